"""Auto-pipelined add_ack: coalescing, bounds, per-caller errors, NOSCRIPT, retry, cancelling."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rac_store import (
    AckOutcome,
    AsyncAuditStore,
    AuditExpectation,
    DomainAck,
    InvalidInputError,
    RACStoreError,
    RetryPolicy,
    StoreResetError,
    StoreResponseError,
    StoreUnavailableError,
    UnsupportedServerError,
)
from rac_store.aio.autopipeline import AckPipeline

from .support.async_helpers import async_client, run_on_shard, sync_client
from .support.faults import script_executions
from .support.redis_server import RedisServer

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)


def acks_of(runs: list[uuid.UUID], count: int) -> list[DomainAck]:
    """``count`` acks spread over ``runs``, each of its own action."""
    return [DomainAck(runs[i % len(runs)], "w", f"a{i}") for i in range(count)]


async def ack_all(
    store: AsyncAuditStore, acks: list[DomainAck], run: uuid.UUID | None = None
) -> list[Any]:
    """Every ack from its own concurrent caller (for ``run``, or its own); outcomes or errors."""
    return await asyncio.gather(
        *(store.add_ack(run or a.run_id, a) for a in acks), return_exceptions=True
    )


async def ack_all_counting_trips(
    store: AsyncAuditStore, acks: list[DomainAck], run: uuid.UUID | None = None
) -> tuple[list[Any], int]:
    """``ack_all``, and how many round trips the pipeline made for it."""
    pipeline = store.autopipeline
    assert pipeline is not None
    before = pipeline.round_trips
    outcomes = await ack_all(store, acks, run)
    return outcomes, pipeline.round_trips - before


# -- coalescing and bounds ------------------------------------------------------------
def test_concurrent_acks_share_round_trips(redis_server: RedisServer, redis_client: Any) -> None:
    """1,000 callers at once: two EVALSHAs (512 + 488), where one per ack would be 1,000."""
    runs = [uuid.uuid4() for _ in range(10)]
    acks = acks_of(runs, 1000)

    async def main(autopipeline: bool) -> list[Any]:
        async with AsyncAuditStore.from_url(
            redis_server.url, shards=1, autopipeline=autopipeline
        ) as store:
            redis_client.config_resetstat()
            return await ack_all(store, acks)

    outcomes = asyncio.run(main(True))
    assert outcomes == [AckOutcome.DRIFT] * 1000
    assert script_executions(redis_client) == 2
    total = sum(redis_client.llen(f"rac:{{0}}:acks:{run}") for run in runs)
    assert total == 1000

    redis_client.flushall()
    assert asyncio.run(main(False)) == [AckOutcome.DRIFT] * 1000
    assert script_executions(redis_client) == 1000  # the same count without coalescing


def test_one_call_per_shard_in_one_round_trip(redis_server: RedisServer, redis_client: Any) -> None:
    runs = [run_on_shard(shard) for shard in range(16) for _ in range(2)]
    acks = acks_of(runs, 64)

    async def main() -> tuple[list[Any], int]:
        async with AsyncAuditStore(async_client(redis_server)) as store:
            redis_client.config_resetstat()
            return await ack_all_counting_trips(store, acks)

    outcomes, trips = asyncio.run(main())
    assert outcomes == [AckOutcome.DRIFT] * 64
    assert trips == 1
    assert script_executions(redis_client) == 16


def test_batch_size_is_bounded(any_server: Any) -> None:
    """With at most 100 acks per trip, 1,000 queued acks take exactly 10 trips."""
    acks = acks_of([uuid.uuid4() for _ in range(5)], 1000)

    async def main() -> tuple[list[Any], int]:
        async with AsyncAuditStore(
            async_client(any_server), shards=1, autopipeline_batch=100
        ) as store:
            if isinstance(any_server, RedisServer):
                sync_client(any_server).config_resetstat()
            return await ack_all_counting_trips(store, acks)

    outcomes, trips = asyncio.run(main())
    assert outcomes == [AckOutcome.DRIFT] * 1000
    assert trips == 10
    if isinstance(any_server, RedisServer):
        assert script_executions(sync_client(any_server)) == 10


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_bad_pipeline_bounds(bad: Any) -> None:
    with pytest.raises(InvalidInputError):
        AsyncAuditStore(autopipeline_batch=bad)


def test_acks_keep_each_runs_submission_order(any_server: Any) -> None:
    runs = [uuid.uuid4() for _ in range(3)]
    acks = acks_of(runs, 30)

    async def main() -> dict[uuid.UUID, list[str]]:
        async with AsyncAuditStore(async_client(any_server)) as store:
            await ack_all(store, acks)
            return {run: [a.action for a in await store.get_acks(run)] for run in runs}

    stored = asyncio.run(main())
    for run in runs:
        assert stored[run] == [a.action for a in acks if a.run_id == run]


def test_outcomes_reach_their_own_callers(any_server: Any) -> None:
    """Recorded, late, drift and duplicate in one trip, each to the caller it belongs to."""
    run = uuid.uuid4()
    first = DomainAck(run, "d", "on_time")

    async def main() -> list[Any]:
        async with AsyncAuditStore(async_client(any_server)) as store:
            await store.add_expectations(
                run,
                [
                    AuditExpectation(run, "d", "on_time", 60_000),
                    AuditExpectation(run, "d", "late", 0),
                ],
            )
            await store.add_ack(run, first)
            await asyncio.sleep(0.01)
            outcomes, trips = await ack_all_counting_trips(
                store, [DomainAck(run, "d", "late"), DomainAck(run, "d", "stray"), first]
            )
            assert trips == 1
            return outcomes

    assert asyncio.run(main()) == [AckOutcome.LATE, AckOutcome.DRIFT, AckOutcome.DUPLICATE]


# -- errors reach only their own callers -----------------------------------------------
def test_bad_ack_fails_only_its_caller(any_server: Any) -> None:
    run = uuid.uuid4()
    good = acks_of([run], 5)
    bad = [DomainAck(run, "d|x", "a"), DomainAck(uuid.uuid4(), "d", "a")]

    async def main() -> tuple[list[Any], list[DomainAck], int]:
        async with AsyncAuditStore(async_client(any_server)) as store:
            results, trips = await ack_all_counting_trips(
                store, [*good[:2], bad[0], *good[2:], bad[1]], run
            )
            return results, await store.get_acks(run), trips

    results, stored, trips = asyncio.run(main())
    assert isinstance(results[2], InvalidInputError)
    assert isinstance(results[6], InvalidInputError)
    assert results[:2] + results[3:6] == [AckOutcome.DRIFT] * 5
    assert [a.id for a in stored] == [a.id for a in good]
    assert trips == 1


def test_error_reply_fails_only_the_callers_of_that_shard(any_server: Any) -> None:
    broken, fine = run_on_shard(3), run_on_shard(5)
    sync_client(any_server).set(f"rac:{{3}}:acks:{broken}", "not a list")

    async def main() -> tuple[list[Any], list[Any], int]:
        async with AsyncAuditStore(async_client(any_server)) as store:
            first, trips = await ack_all_counting_trips(
                store, [*acks_of([broken], 2), *acks_of([fine], 2)]
            )
            later = await ack_all(store, [DomainAck(fine, "w", "later")])
            return first, later, trips

    first, later, trips = asyncio.run(main())
    assert trips == 1
    for error in first[:2]:
        assert isinstance(error, StoreResponseError)
        assert "WRONGTYPE" in str(error)
        assert isinstance(error.__cause__, redis.ResponseError)
    assert first[0] is not first[1]  # every caller gets an error of its own
    assert first[2:] == [AckOutcome.DRIFT] * 2
    assert later == [AckOutcome.DRIFT]


def test_lost_server_fails_that_round_trip_only() -> None:
    server = RedisServer().start()
    replacement = RedisServer(port=server.port)
    run = uuid.uuid4()

    async def main() -> tuple[list[Any], list[Any]]:
        # No retries inside redis-py (its default backs off for seconds): ours only.
        client = async_client(server, retry=Retry(NoBackoff(), 0))
        store = AsyncAuditStore(client, retry=FAST_RETRY)
        await store.initialize()
        server.stop()
        lost = await ack_all(store, acks_of([run], 3))
        replacement.start()  # a new server on the same port
        again = await ack_all(store, acks_of([run], 2))
        await store.aclose()
        return lost, again

    try:
        lost, again = asyncio.run(main())
    finally:
        replacement.cleanup()
        server.cleanup()
    for error in lost:
        assert isinstance(error, StoreUnavailableError)
        assert isinstance(error.__cause__, redis.ConnectionError)
    # The new server holds none of the store's data: its acks are refused, not drift.
    assert [type(error) for error in again] == [StoreResetError] * 2


class LoseFirstReply(redis.asyncio.Connection):
    """A connection that reads the first reply of the process, then 'loses' it."""

    lost = 0

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        reply = await super().read_response(*args, **kwargs)
        if LoseFirstReply.lost == 0 and isinstance(reply, list):
            LoseFirstReply.lost += 1
            raise redis.ConnectionError("reply lost (simulated)")
        return reply


def test_lost_reply_is_resent_and_recorded_once(
    redis_server: RedisServer, redis_client: Any
) -> None:
    run = uuid.uuid4()
    acks = acks_of([run], 20)
    LoseFirstReply.lost = 0

    async def main() -> tuple[list[Any], list[DomainAck]]:
        pool = redis.asyncio.ConnectionPool(
            host="127.0.0.1", port=redis_server.port, connection_class=LoseFirstReply
        )
        client = redis.asyncio.Redis.from_pool(pool)
        async with AsyncAuditStore(client, shards=1, retry=FAST_RETRY) as store:
            outcomes = await ack_all(store, acks)
            return outcomes, await store.get_acks(run)

    outcomes, stored = asyncio.run(main())
    assert LoseFirstReply.lost == 1
    # The first send ran on the server; the re-send (same merged call, same call
    # token) finds every ack already there and reports the first send's outcomes.
    assert outcomes == [AckOutcome.DRIFT] * 20
    assert [a.id for a in stored] == [a.id for a in acks]


def test_noscript_is_recovered_inside_a_coalesced_trip(any_server: Any) -> None:
    """After SCRIPT FLUSH every shard's call meets NOSCRIPT; the trip reloads and re-sends."""
    runs = [run_on_shard(shard) for shard in range(4)]
    first, second = acks_of(runs, 8), acks_of(runs[::-1], 8)
    raw = sync_client(any_server)

    async def main() -> tuple[list[Any], list[Any], int]:
        async with AsyncAuditStore(async_client(any_server)) as store:
            assert await ack_all(store, first) == [AckOutcome.DRIFT] * 8
            raw.script_flush()
            sha = store._scripts["add_acks"].sha
            assert raw.script_exists(sha) == [False]
            after, trips = await ack_all_counting_trips(store, [*second, first[0]])
            assert raw.script_exists(sha) == [True]
            stored = [a for run in runs for a in await store.get_acks(run)]
            return after, stored, trips

    after, stored, trips = asyncio.run(main())
    assert after == [AckOutcome.DRIFT] * 8 + [AckOutcome.DUPLICATE]
    assert trips == 1  # NOSCRIPT re-sends belong to the trip that met them
    assert sorted(a.id for a in stored) == sorted(a.id for a in first + second)


# -- cancellation ----------------------------------------------------------------------
def test_cancelled_after_queueing_is_still_sent(any_server: Any) -> None:
    run = uuid.uuid4()
    ack, other = DomainAck(run, "w", "cancelled"), DomainAck(run, "w", "kept")

    async def main() -> tuple[bool, Any, list[DomainAck]]:
        async with AsyncAuditStore(async_client(any_server)) as store:
            task = asyncio.create_task(store.add_ack(run, ack))
            sibling = asyncio.create_task(store.add_ack(run, other))
            await asyncio.sleep(0)  # both have validated and queued their acks
            assert store.autopipeline is not None and store.autopipeline.queued == 2
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            outcome = await sibling
            await store.flush()
            return task.cancelled(), outcome, await store.get_acks(run)

    cancelled, outcome, stored = asyncio.run(main())
    assert cancelled
    assert outcome is AckOutcome.DRIFT
    assert {a.id for a in stored} == {ack.id, other.id}


def test_cancelled_during_the_round_trip_is_still_recorded(
    redis_server: RedisServer, redis_client: Any
) -> None:
    run = uuid.uuid4()
    ack, other = DomainAck(run, "w", "cancelled"), DomainAck(run, "w", "kept")

    async def main() -> tuple[Any, list[DomainAck]]:
        async with AsyncAuditStore(async_client(redis_server)) as store:
            redis_client.execute_command("CLIENT", "PAUSE", 300, "WRITE")
            task = asyncio.create_task(store.add_ack(run, ack))
            sibling = asyncio.create_task(store.add_ack(run, other))
            await asyncio.sleep(0.1)  # the trip is on the wire, held by the pause
            assert store.autopipeline is not None and store.autopipeline.queued == 0
            assert not sibling.done()
            # reads are not paused: the trip really has not run when its caller is cancelled
            assert redis_client.llen(store.core.keys.for_run(str(run)).acks) == 0
            task.cancel()
            outcome = await sibling
            assert task.cancelled()
            return outcome, await store.get_acks(run)

    outcome, stored = asyncio.run(main())
    assert outcome is AckOutcome.DRIFT
    assert {a.id for a in stored} == {ack.id, other.id}


def test_cancelled_before_it_ran_is_not_sent(any_server: Any) -> None:
    run = uuid.uuid4()

    async def main() -> list[DomainAck]:
        async with AsyncAuditStore(async_client(any_server)) as store:
            task = asyncio.create_task(store.add_ack(run, DomainAck(run, "w", "never")))
            task.cancel()  # before its first step: nothing validated, nothing queued
            with pytest.raises(asyncio.CancelledError):
                await task
            await store.add_ack(run, DomainAck(run, "w", "sent"))
            return await store.get_acks(run)

    assert [a.action for a in asyncio.run(main())] == ["sent"]


def test_aclose_sends_what_was_queued(any_server: Any) -> None:
    run = uuid.uuid4()
    acks = acks_of([run], 50)

    async def main() -> list[asyncio.Task[AckOutcome]]:
        store = AsyncAuditStore(async_client(any_server))
        tasks = [asyncio.create_task(store.add_ack(run, a)) for a in acks]
        await asyncio.sleep(0)
        await store.aclose()
        return tasks

    tasks = asyncio.run(main())
    assert all(t.done() and t.result() is AckOutcome.DRIFT for t in tasks)
    assert sync_client(any_server).llen(f"rac:{{{_shard(run)}}}:acks:{run}") == 50


def _shard(run: uuid.UUID) -> int:
    import zlib

    return zlib.crc32(str(run).encode()) % 16


# -- clients ---------------------------------------------------------------------------
def test_other_encodings_use_redis_pys_packer(any_server: Any) -> None:
    """A latin-1 client: the pipelined path writes what the plain path writes."""
    run = uuid.uuid4()

    async def fields(autopipeline: bool, action: str) -> list[bytes]:
        client = async_client(any_server, encoding="latin-1")
        async with AsyncAuditStore(client, autopipeline=autopipeline) as store:
            await store.add_ack(run, DomainAck(run, "dömain", action))
            keys = await client.hkeys(f"rac:{{{_shard(run)}}}:st:{run}")
            return sorted(k for k in keys if b"|" in k)  # not the "#issues" counter

    assert asyncio.run(fields(False, "plain")) == ["dömain|plain".encode("latin-1")]
    assert asyncio.run(fields(True, "piped")) == sorted(
        ["dömain|plain".encode("latin-1"), "dömain|piped".encode("latin-1")]
    )


class NoPool:
    """A client proxy without a connection pool (as a cluster client has none)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name == "connection_pool":
            raise AttributeError(name)
        return getattr(self._client, name)


def test_client_without_pool_needs_autopipeline_off(
    redis_server: RedisServer, redis_client: Any
) -> None:
    async def main() -> AckOutcome:
        client = NoPool(async_client(redis_server))
        with pytest.raises(UnsupportedServerError, match="autopipeline=False"):
            AsyncAuditStore(client)
        store = AsyncAuditStore(client, autopipeline=False)
        run = uuid.uuid4()
        return await store.add_ack(run, DomainAck(run, "d", "a"))

    assert asyncio.run(main()) is AckOutcome.DRIFT


def test_pipeline_refuses_bad_bounds_directly() -> None:
    client = fakeredis.FakeAsyncRedis()
    with pytest.raises(InvalidInputError, match="max_in_flight"):
        AckPipeline(client, None, FAST_RETRY, asyncio.sleep, max_in_flight=0)


def test_failure_of_a_cancelled_callers_ack_is_raised_by_flush(any_server: Any) -> None:
    broken = run_on_shard(7)
    sync_client(any_server).set(f"rac:{{7}}:acks:{broken}", "not a list")

    async def main() -> None:
        store = AsyncAuditStore(async_client(any_server))
        await store.initialize()
        task = asyncio.create_task(store.add_ack(broken, DomainAck(broken, "w", "lost")))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(RACStoreError, match="1 ack") as caught:
            await store.flush()
        assert isinstance(caught.value.__cause__, StoreResponseError)
        await store.flush()  # reported once
        await store.aclose()

    asyncio.run(main())
