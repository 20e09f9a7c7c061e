"""Clients from URLs: one Redis node, or a Redis Cluster.

A cluster is named by the scheme ``redis+cluster://host:port`` (or
``rediss+cluster://`` with TLS), or by ``cluster=True`` with a plain
``redis://`` URL. Either way the host is only a seed: the client discovers
every node from it. A cluster has a single database, so a path other than
``/0`` is refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from .errors import InvalidInputError

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""URL schemes that name a Redis Cluster, and the plain scheme each stands for."""

_NODE_SCHEMES = ("redis", "rediss", "unix")


def split_cluster_url(url: str, cluster: bool | None = None) -> tuple[str, bool]:
    """The plain URL redis-py reads, and whether it names a cluster.

    ``cluster=None`` lets the scheme decide; True or False must agree with it.
    """
    if not isinstance(url, str) or "://" not in url:
        raise InvalidInputError(f"not a Redis URL: {url!r:.200}")
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in CLUSTER_SCHEMES:
        if cluster is False:
            raise InvalidInputError(f"{scheme}:// names a cluster, but cluster=False was given")
        url, cluster = f"{CLUSTER_SCHEMES[scheme]}://{rest}", True
    elif scheme not in _NODE_SCHEMES:
        raise InvalidInputError(f"unsupported URL scheme {scheme!r} in {url!r:.200}")
    if cluster:
        if scheme == "unix":
            raise InvalidInputError("a Redis Cluster is reached over TCP, not a unix socket")
        if urlsplit(url).path.strip("/") not in ("", "0"):
            raise InvalidInputError(f"a Redis Cluster has only database 0: {url!r:.200}")
    return url, bool(cluster)


def client_from_url(url: str, *, cluster: bool | None = None, **options: Any) -> Any:
    """A ``redis.Redis``, or a ``redis.cluster.RedisCluster`` for a cluster URL."""
    plain, is_cluster_url = split_cluster_url(url, cluster)
    if is_cluster_url:
        return redis.cluster.RedisCluster.from_url(plain, **options)
    return redis.Redis.from_url(plain, **options)


def async_client_from_url(url: str, *, cluster: bool | None = None, **options: Any) -> Any:
    """The asyncio twin of :func:`client_from_url`."""
    plain, is_cluster_url = split_cluster_url(url, cluster)
    if is_cluster_url:
        return redis.asyncio.cluster.RedisCluster.from_url(plain, **options)
    return redis.asyncio.Redis.from_url(plain, **options)


def is_cluster(client: object) -> bool:
    """True for a sync or asyncio Redis Cluster client."""
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)
