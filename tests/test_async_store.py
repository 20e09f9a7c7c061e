"""AsyncAuditStore's own surface: durability rules, initialization, clients, lifetime.

The store's behaviour (writes, state machine, index, validation) is covered by
the contract suite on the async-embedded and async-redis backends.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from typing import Any

import fakeredis
import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rac_store import (
    AckOutcome,
    AsyncAuditStore,
    AuditStore,
    DomainAck,
    LayoutMismatchError,
    RACDurabilityError,
    StoreDurabilityMode,
    create_domain_ack,
    create_run_expectations,
)

from .support.async_helpers import async_client
from .support.redis_server import RedisServer
from .test_autopipeline import LoseFirstReply


def test_every_sync_method_has_a_coroutine_twin() -> None:
    for name, method in inspect.getmembers(AuditStore, inspect.isfunction):
        if name.startswith("_") or name == "close":
            continue
        if name in ("audited", "audit"):  # return a context manager / decorator for coroutines
            assert list(inspect.signature(getattr(AsyncAuditStore, name)).parameters) == list(
                inspect.signature(method).parameters
            ), name
            continue
        twin = getattr(AsyncAuditStore, name)
        assert inspect.iscoroutinefunction(twin), name
        assert list(inspect.signature(twin).parameters) == list(
            inspect.signature(method).parameters
        ), name
    for name in ("durability_mode", "is_durable", "client", "core"):
        assert isinstance(getattr(AsyncAuditStore, name), property), name
    assert inspect.iscoroutinefunction(AsyncAuditStore.aclose)


def test_default_is_the_embedded_server() -> None:
    async def main() -> tuple[AsyncAuditStore, list[Any]]:
        async with AsyncAuditStore() as store:
            run = uuid.uuid4()
            await store.add_expectations(run, create_run_expectations(run))
            outcome = await store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
            return store, [outcome, len(await store.get_expectations(run))]

    store, seen = asyncio.run(main())
    assert store.durability_mode is StoreDurabilityMode.MEMORY
    assert not store.is_durable
    assert isinstance(store.client, fakeredis.FakeAsyncRedis)
    assert seen == [AckOutcome.RECORDED, 4]


def test_two_default_stores_do_not_share_data() -> None:
    async def main() -> bool:
        run = uuid.uuid4()
        async with AsyncAuditStore() as first, AsyncAuditStore() as second:
            await first.add_ack(run, DomainAck(run, "d", "a"))
            return await second.load_from_redis(run)

    assert asyncio.run(main()) is False


@pytest.mark.parametrize("mode", ["test", "prod"])
def test_durable_modes_refuse_the_embedded_default(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("AOS_MODE", mode)
    with pytest.raises(RACDurabilityError, match="RAC_REDIS_URL"):
        AsyncAuditStore()


def test_env_url_connects_to_redis(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, redis_client: Any
) -> None:
    monkeypatch.setenv("AOS_MODE", "prod")
    monkeypatch.setenv("RAC_REDIS_URL", redis_server.url)
    run = uuid.uuid4()

    async def main() -> AsyncAuditStore:
        async with AsyncAuditStore() as store:
            await store.add_ack(run, DomainAck(run, "d", "a"))
            return store

    store = asyncio.run(main())
    assert store.durability_mode is StoreDurabilityMode.REDIS
    assert store.is_durable
    assert isinstance(store.client.connection_pool, redis.asyncio.BlockingConnectionPool)
    assert len(AuditStore(redis_client).get_acks(run)) == 1  # the sync store sees it


def test_an_explicit_embedded_client_is_memory() -> None:
    store = AsyncAuditStore(fakeredis.FakeAsyncRedis())
    assert store.durability_mode is StoreDurabilityMode.MEMORY


def test_layout_mismatch_on_initialize_and_on_first_use(any_server: Any) -> None:
    run = uuid.uuid4()

    async def main() -> list[Any]:
        async with AsyncAuditStore(async_client(any_server), shards=16):
            pass
        other = AsyncAuditStore(async_client(any_server), shards=8)
        with pytest.raises(LayoutMismatchError):
            await other.initialize()
        lazy = AsyncAuditStore(async_client(any_server), shards=8)
        results = await asyncio.gather(
            lazy.add_ack(run, DomainAck(run, "d", "a")),
            lazy.add_ack(run, DomainAck(run, "d", "b")),
            lazy.get_acks(run),
            return_exceptions=True,
        )
        await other.aclose()
        await lazy.aclose()
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, LayoutMismatchError) for r in results), results


def test_from_url_queues_callers_for_connections(
    redis_server: RedisServer, redis_client: Any
) -> None:
    """300 concurrent unpipelined calls share a 64-connection pool instead of failing."""
    run = uuid.uuid4()

    async def main() -> list[Any]:
        async with AsyncAuditStore.from_url(redis_server.url, autopipeline=False) as store:
            return await asyncio.gather(
                *(store.add_ack(run, DomainAck(run, "d", f"a{i}")) for i in range(300))
            )

    assert asyncio.run(main()) == [AckOutcome.DRIFT] * 300
    assert redis_client.info("clients")["connected_clients"] <= 64 + 1


def test_lost_reply_is_resent_without_autopipeline(
    redis_server: RedisServer, redis_client: Any
) -> None:
    """The async counterpart of the sync store's lost-reply test: recorded once."""
    run = uuid.uuid4()
    ack = DomainAck(run, "d", "a")
    LoseFirstReply.lost = 0

    async def main() -> tuple[AckOutcome, list[DomainAck]]:
        pool = redis.asyncio.ConnectionPool(
            host="127.0.0.1",
            port=redis_server.port,
            connection_class=LoseFirstReply,
            retry=Retry(NoBackoff(), 0),
        )
        async with AsyncAuditStore(redis.asyncio.Redis.from_pool(pool), autopipeline=False) as s:
            return await s.add_ack(run, ack), await s.get_acks(run)

    outcome, stored = asyncio.run(main())
    assert LoseFirstReply.lost == 1
    # The first send ran and its reply was lost; the re-send (same call token)
    # reports the outcome the first send gave, not DUPLICATE.
    assert outcome is AckOutcome.DRIFT
    assert [a.id for a in stored] == [ack.id]


def test_server_time_and_pending_reads(any_server: Any) -> None:
    run = uuid.uuid4()

    async def main() -> tuple[int, list[str], list[str]]:
        async with AsyncAuditStore(async_client(any_server)) as store:
            await store.add_expectations(run, create_run_expectations(run))
            now = await store.server_time_ms()
            return (
                now,
                await store.get_pending_run_ids(),
                await store.get_pending_run_ids(due_before=now),
            )

    now, pending, due = asyncio.run(main())
    assert now > 1_600_000_000_000
    assert pending == [str(run)]
    assert due == []
