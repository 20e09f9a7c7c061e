"""Clients from URLs: one Redis node or a Redis Cluster, sync or asyncio.

The URL forms are those of :mod:`rac_store.cluster.urls`. A client made here
has explicit timeouts and, on a single node, no re-sends of its own, so that
the store's :class:`~rac_store.retry.RetryPolicy` alone decides how often a
call is sent and how long a caller can wait, whatever redis-py's defaults
(they changed between redis-py 5 and 8). Both are overridable:
``client_options`` (or the URL's query string) win.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.backoff
import redis.cluster
import redis.retry

from .cluster import is_cluster
from .cluster.urls import redacted, split_cluster_url, split_seeds
from .embedded import is_embedded
from .errors import StoreUnavailableError

ASYNC_POOL_SIZE = 64
"""Connections of an asyncio client made from a URL."""
DEFAULT_SOCKET_TIMEOUT = 5.0
"""Seconds a client made from a URL waits for a reply (redis-py's ``socket_timeout``)."""
DEFAULT_CONNECT_TIMEOUT = 2.0
"""Seconds a client made from a URL waits for a connection (``socket_connect_timeout``)."""


def _timeouts(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "socket_timeout": DEFAULT_SOCKET_TIMEOUT,
        "socket_connect_timeout": DEFAULT_CONNECT_TIMEOUT,
        **options,
    }


def client_from_url(url: str, *, cluster: bool | None = None, **options: Any) -> Any:
    """A ``redis.Redis``, or a ``redis.cluster.RedisCluster`` for a cluster URL.

    Defaults (``options`` override them): ``socket_timeout`` 5 s,
    ``socket_connect_timeout`` 2 s and, on a single node, no redis-py re-sends
    (``retry=Retry(NoBackoff(), 0)``). A cluster client keeps redis-py's cluster
    retries (they re-read the slot map after a failover; docs/cluster.md) and
    connects at once (to learn the slot map): when no seed answers,
    StoreUnavailableError.
    """
    plain, is_cluster_url = split_cluster_url(url, cluster)
    options = _timeouts(options)
    if not is_cluster_url:
        options.setdefault("retry", redis.retry.Retry(redis.backoff.NoBackoff(), 0))
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
    """The asyncio twin of :func:`client_from_url` (it connects on first use), with the
    same defaults.

    A single node's client waits for a free connection when all
    ``max_connections`` are busy (a blocking pool) rather than failing with
    "Too many connections", as redis.asyncio's default pool does past 100
    concurrent commands.
    """
    plain, is_cluster_url = split_cluster_url(url, cluster)
    options = _timeouts(options)
    if not is_cluster_url:
        options.setdefault("retry", redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0))
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            plain, max_connections=max_connections, **options
        )
        return redis.asyncio.Redis.from_pool(pool)
    plain, seeds = split_seeds(plain)
    if seeds:
        options["startup_nodes"] = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in seeds]
    return redis.asyncio.cluster.RedisCluster.from_url(plain, **options)


def client_resends(client: Any) -> int:
    """How many times ``client`` re-sends a command by itself after a lost connection.

    A redis-py client's connections carry a ``Retry`` (redis-py 8's ``Redis(host=...)``
    re-sends 10 times; clients made by this module, 0). The store counts those sends
    against its own :class:`~rac_store.retry.RetryPolicy` budget instead of
    multiplying them. 0 for the embedded backend and for Redis Cluster clients
    (whose retries re-route rather than re-send; docs/cluster.md).
    """
    if is_embedded(client) or is_cluster(client):
        return 0
    read_kwargs = getattr(client, "get_connection_kwargs", None)
    if not callable(read_kwargs):
        return 0
    kwargs = read_kwargs()
    retry = kwargs.get("retry")
    if retry is not None:
        return max(0, int(retry.get_retries()))
    # redis-py < 6: retry_on_timeout / retry_on_error without a Retry mean one re-send
    return 1 if kwargs.get("retry_on_timeout") or kwargs.get("retry_on_error") else 0
