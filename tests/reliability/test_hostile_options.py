"""Issue 15, item 7: hostile options are refused when the store is made, before any connection.

Each option is checked by ``StoreSettings`` (and RetryPolicy's own fields by
``RetryPolicy``) with InvalidInputError; ``from_url`` checks them before it makes a
client, so a refused store never connects: the real server counts no connection
(and a Redis Cluster URL, whose client connects when it is made, is not reached).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from rac_store import AsyncAuditStore, AuditStore, InvalidInputError, RetryPolicy

from ..support.redis_server import RedisServer

pytestmark = pytest.mark.redis_only

HOSTILE_OPTIONS: dict[str, dict[str, Any]] = {
    "ttl 10**16 s": {"ttl_seconds": 10**16},
    "ttl over a year": {"ttl_seconds": 365 * 24 * 3600 + 1},
    "ttl 0": {"ttl_seconds": 0},
    "ttl negative": {"ttl_seconds": -5},
    "ttl a float": {"ttl_seconds": 1.5},
    "ttl a bool": {"ttl_seconds": True},
    "ttl text": {"ttl_seconds": "3600"},
    "findings_maxlen 10**20": {"findings_maxlen": 10**20},
    "findings_maxlen 0": {"findings_maxlen": 0},
    "findings_maxlen a float": {"findings_maxlen": 1e3},
    "shards 3": {"shards": 3},
    "shards 2**15": {"shards": 2**15},
    "prefix with a glob": {"prefix": "rac*"},
    "prefix with a brace": {"prefix": "{rac}"},
    "prefix empty": {"prefix": ""},
    "prefix 65 characters": {"prefix": "p" * 65},
    "retry not a policy": {"retry": (4, 0.05, 1.0)},
    "check_server text": {"check_server": "no"},
    "read_only an int": {"read_only": 1},
    "allow_no_persistence text": {"allow_no_persistence": "yes"},
}

HOSTILE_POLICIES: dict[str, dict[str, Any]] = {
    "negative base_delay": {"base_delay": -1},
    "nan max_delay": {"max_delay": float("nan")},
    "max below base": {"base_delay": 2.0, "max_delay": 1.0},
    "zero attempts": {"attempts": 0},
    "infinite busy_timeout": {"busy_timeout": float("inf")},
    "jitter above 1": {"jitter": 2},
}


def connections(client: redis.Redis) -> int:
    return int(client.info("stats")["total_connections_received"])


@pytest.mark.parametrize("name", list(HOSTILE_OPTIONS))
def test_hostile_options_are_refused_before_any_connection(
    redis_server: RedisServer, redis_client: redis.Redis, name: str
) -> None:
    options = HOSTILE_OPTIONS[name]
    before = connections(redis_client)
    with pytest.raises(InvalidInputError):
        AuditStore.from_url(redis_server.url, **options)
    with pytest.raises(InvalidInputError):
        AuditStore.from_url(redis_server.url, cluster=True, **options)  # connects when made
    with pytest.raises(InvalidInputError):
        AsyncAuditStore.from_url(redis_server.url, **options)
    with pytest.raises(InvalidInputError):
        AuditStore(redis.Redis(host="127.0.0.1", port=redis_server.port), **options)
    assert connections(redis_client) == before
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize("name", list(HOSTILE_POLICIES))
def test_hostile_retry_policies_are_refused_when_made(name: str) -> None:
    with pytest.raises(InvalidInputError):
        RetryPolicy(**HOSTILE_POLICIES[name])


def test_the_async_stores_own_options_are_checked_too(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    before = connections(redis_client)
    for options in ({"autopipeline_batch": 0}, {"autopipeline_batch": 1.5}, {"autopipeline": 1}):
        with pytest.raises(InvalidInputError):
            AsyncAuditStore.from_url(redis_server.url, **options)
    with pytest.raises(InvalidInputError):
        AuditStore.from_url(redis_server.url, wait_aof="always")
    assert connections(redis_client) == before


def test_the_bounds_themselves_are_accepted(redis_server: RedisServer) -> None:
    store = AuditStore.from_url(
        redis_server.url, prefix="bounds", ttl_seconds=365 * 24 * 3600, findings_maxlen=10_000_000
    )
    assert store.core.ttl_seconds == 365 * 24 * 3600
    store.close()

    async def open_async() -> None:
        async with AsyncAuditStore.from_url(redis_server.url, prefix="bounds", ttl_seconds=1):
            pass

    asyncio.run(open_async())
