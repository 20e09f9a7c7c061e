"""Redis Cluster: cluster URLs, the short route to a slot's primary, and the shard layout."""

import redis.asyncio.cluster
import redis.cluster


def is_cluster(client: object) -> bool:
    """True for a sync or asyncio Redis Cluster client."""
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)
