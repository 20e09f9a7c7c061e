"""Edges of the asyncio store: a cancelled round trip, a cancelled audited block's lost ack,
and ending a run whose keys are gone."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from rac_store import (
    AckOutcome,
    AsyncAuditStore,
    AuditExpectation,
    AuditReconciler,
    AuditStore,
    DomainAck,
    FindingType,
    RACStoreError,
    RunNotFoundError,
    StoreResponseError,
)

from .support.async_helpers import async_client
from .support.redis_server import RedisServer


def test_a_cancelled_round_trip_fails_its_callers_and_writes_nothing(
    redis_server: RedisServer, redis_client: Any
) -> None:
    """The trip is cancelled (as at loop shutdown) while it waits for the server: each caller
    hears a typed error chained to the cancellation, and the ack is not recorded."""
    run = uuid.uuid4()

    async def main() -> tuple[BaseException | None, AckOutcome, list[DomainAck]]:
        store = AsyncAuditStore(async_client(redis_server))
        # held by the server for 2 s (CLIENT UNPAUSE does not release a connection
        # made during the pause on Redis 7.0); the trip is cancelled well before
        redis_client.execute_command("CLIENT", "PAUSE", 2000, "ALL")
        caller = asyncio.create_task(store.add_ack(run, DomainAck(run, "w", "held")))
        while store.autopipeline is None or store.autopipeline.queued != 1:
            await asyncio.sleep(0)
        while store.autopipeline.queued:  # the trip takes it
            await asyncio.sleep(0)
        [trip] = asyncio.all_tasks() - {asyncio.current_task(), caller}
        while trip.get_coro().cr_await is None:  # type: ignore[union-attr]
            await asyncio.sleep(0)  # until the trip waits on the (paused) server
        trip.cancel()
        error = (await asyncio.gather(caller, return_exceptions=True))[0]
        later = await store.add_ack(run, DomainAck(run, "w", "later"))
        stored = await store.get_acks(run)
        await store.aclose()
        return error, later, stored

    error, later, stored = asyncio.run(main())
    assert isinstance(error, RACStoreError)
    assert str(error) == "add_ack: the round trip was cancelled before its reply"
    assert isinstance(error.__cause__, asyncio.CancelledError)
    assert later is AckOutcome.DRIFT
    assert [a.action for a in stored] == ["later"]


def _wrong_type_acks(store: AsyncAuditStore, run: uuid.UUID) -> Any:
    """Make the run's ack list a string: its acks then fail (WRONGTYPE)."""
    return store.client.set(store.core.keys.for_run(str(run)).acks, "not a list")


def _lost_ack_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "audited block failed" in r.getMessage()]


def test_the_lost_ack_of_a_cancelled_audited_block_is_logged(
    redis_server: RedisServer, redis_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelled again while its ack is held by the server: the send goes on, and its error,
    which no caller can hear any more, is logged."""
    run = uuid.uuid4()

    async def main() -> None:
        store = AsyncAuditStore(async_client(redis_server), autopipeline=False)
        await store.initialize()
        await _wrong_type_acks(store, run)
        entered = asyncio.Event()

        async def block() -> None:
            async with store.audited(run, "d", "a"):
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(block())
        await entered.wait()
        redis_client.execute_command("CLIENT", "PAUSE", 2000, "WRITE")  # holds the ack
        in_block = task.get_coro().cr_await  # type: ignore[union-attr]
        task.cancel()  # the block ends: its ack is sent, and held by the pause
        while task.get_coro().cr_await in (None, in_block):  # type: ignore[union-attr]
            await asyncio.sleep(0)  # until the task awaits the ack's send
        task.cancel()  # the caller is cancelled again, while the ack is on its way
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _lost_ack_logs(caplog) == []  # not failed yet: still held
        while not _lost_ack_logs(caplog):
            await asyncio.sleep(0.01)
        await store.aclose()

    with caplog.at_level(logging.ERROR, logger="rac_store"):
        asyncio.run(asyncio.wait_for(main(), 30))
    [message] = _lost_ack_logs(caplog)
    assert "StoreResponseError" in message and "WRONGTYPE" in message


def test_the_failed_ack_of_a_block_is_raised_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A caller that was not cancelled hears the error itself: it is not also logged as lost."""
    run = uuid.uuid4()

    async def main() -> BaseException | None:
        store = AsyncAuditStore(autopipeline=False)
        await store.initialize()
        await _wrong_type_acks(store, run)
        try:
            async with store.audited(run, "d", "a"):
                pass
        except RACStoreError as exc:
            return exc
        finally:
            await store.aclose()
        return None

    with caplog.at_level(logging.ERROR, logger="rac_store"):
        error = asyncio.run(main())
    assert isinstance(error, StoreResponseError) and "WRONGTYPE" in str(error)
    assert _lost_ack_logs(caplog) == []


def test_ending_a_run_whose_keys_are_gone_reports_it_expired() -> None:
    store = AuditStore(metrics=False)
    rec = AuditReconciler(store, metrics=False)
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", "a", 600_000)])
    store.client.delete(*store.core.keys.for_run(str(run)).run_keys)
    with pytest.raises(RunNotFoundError, match="had expired; it is reported as EXPIRED"):
        rec.end_run(run)
    assert store.get_pending_run_ids() == []
    assert [(f.type, f.run_id) for f in rec.iter_findings()] == [(FindingType.EXPIRED, str(run))]
    with pytest.raises(RunNotFoundError, match="is not in the store"):
        rec.end_run(run)  # gone from the index too now
