"""Clients from URLs: one Redis node or a Redis Cluster, sync or asyncio.

The URL forms are those of :mod:`rac_store.cluster.urls`.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from .cluster.urls import redacted, split_cluster_url, split_seeds
from .errors import StoreUnavailableError

ASYNC_POOL_SIZE = 64
"""Connections of an asyncio client made from a URL."""


def client_from_url(url: str, *, cluster: bool | None = None, **options: Any) -> Any:
    """A ``redis.Redis``, or a ``redis.cluster.RedisCluster`` for a cluster URL.

    A cluster client connects at once (to learn the slot map): when no seed answers,
    StoreUnavailableError.
    """
    plain, is_cluster_url = split_cluster_url(url, cluster)
    if not is_cluster_url:
        return redis.Redis.from_url(plain, **options)
    plain, seeds = split_seeds(plain)
    if seeds:
        node = redis.cluster.ClusterNode
        options["startup_nodes"] = [node(h, p) for h, p in seeds]  # type: ignore[no-untyped-call]
    try:
        return redis.cluster.RedisCluster.from_url(plain, **options)
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        raise StoreUnavailableError(f"no seed of {redacted(url)} answers: {exc}") from exc


def async_client_from_url(
    url: str,
    *,
    cluster: bool | None = None,
    max_connections: int = ASYNC_POOL_SIZE,
    **options: Any,
) -> Any:
    """The asyncio twin of :func:`client_from_url` (it connects on first use).

    A single node's client waits for a free connection when all
    ``max_connections`` are busy (a blocking pool) rather than failing with
    "Too many connections", as redis.asyncio's default pool does past 100
    concurrent commands.
    """
    plain, is_cluster_url = split_cluster_url(url, cluster)
    if not is_cluster_url:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            plain, max_connections=max_connections, **options
        )
        return redis.asyncio.Redis.from_pool(pool)
    plain, seeds = split_seeds(plain)
    if seeds:
        options["startup_nodes"] = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in seeds]
    return redis.asyncio.cluster.RedisCluster.from_url(plain, **options)
