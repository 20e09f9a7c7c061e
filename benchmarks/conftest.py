"""Fixtures of the pytest-benchmark modules (``pytest benchmarks/``).

They start their own redis-server on a free loopback port (:mod:`benchmarks.servers`,
as the runner does) and never touch a server somebody else runs. Compare commits with
``pytest benchmarks/ --benchmark-autosave`` then ``--benchmark-compare``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from rac_store import AuditStore
from rac_store.embedded import create_embedded_client
from tests.support.redis_server import RedisServer

from .servers import redis_server as start_redis_server
from .workload import PendingAck, pending_acks

ROUNDS = 1000
"""Calls per write benchmark (each call writes something new)."""


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server this session starts on a free loopback port."""
    with start_redis_server() as server:
        yield server


@pytest.fixture(params=["redis", "embedded"])
def store(request: pytest.FixtureRequest) -> Iterator[AuditStore]:
    """A store on the session's redis-server (emptied first) or on a new embedded server."""
    if request.param == "redis":
        client: redis.Redis = request.getfixturevalue("redis_server").client()
        client.flushall()
    else:
        client = create_embedded_client()
    store = AuditStore(client)
    yield store
    store.close()


@pytest.fixture
def redis_store(redis_server: RedisServer) -> Iterator[AuditStore]:
    """A store on the session's redis-server only (emptied first)."""
    client = redis_server.client()
    client.flushall()
    store = AuditStore(client)
    yield store
    store.close()


def feeder(items: list[Any]) -> Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]:
    """A pytest-benchmark ``setup`` handing out one item per round as the target's args."""
    remaining = iter(items)

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        item = next(remaining)
        return (item if isinstance(item, tuple) else (item,)), {}

    return setup


def ack_feeder(
    store: AuditStore, rounds: int
) -> Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]:
    """One ack per round, each answering a PENDING expectation of a declared run."""
    acks: list[PendingAck] = pending_acks(store, rounds)
    return feeder([(a.run_id, a.ack) for a in acks])
