"""``store.audited(...)`` and ``@store.audit(...)``: the block's outcome is the ack.

Sync on the embedded store and the session's redis-server; asyncio likewise,
with real task cancellation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from rac_store import (
    AckStatus,
    AsyncAuditStore,
    AuditExpectation,
    AuditStatus,
    AuditStore,
    DomainAck,
    InvalidInputError,
    StoreUnavailableError,
)
from rac_store.audited import MAX_ERROR_CHARS, AuditedAction, current_action
from rac_store.embedded import (
    create_embedded_async_client,
    create_embedded_client,
    create_embedded_server,
)

LONG = 600_000


@pytest.fixture(params=("embedded", "redis"))
def store(request: pytest.FixtureRequest) -> Iterator[AuditStore]:
    if request.param == "embedded":
        made = AuditStore(create_embedded_client(), metrics=False)
    else:
        made = AuditStore(request.getfixturevalue("redis_client"), metrics=False)
    yield made


def declared(store: AuditStore, *actions: str) -> uuid.UUID:
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", a, LONG) for a in actions])
    return run


def status_of(store: AuditStore, run: uuid.UUID) -> dict[str, AuditStatus]:
    return {e.action: e.status for e in store.get_expectations(run)}


def only_ack(store: AuditStore, run: uuid.UUID) -> DomainAck:
    (ack,) = store.get_acks(run)
    return ack


def test_a_block_that_ends_acks_success_with_the_result_id(store: AuditStore) -> None:
    run = declared(store, "a")
    with store.audited(run, "d", "a") as act:
        assert current_action() is act
        act.result_id = "INC-42"
    assert current_action() is None
    ack = only_ack(store, run)
    assert (ack.status, ack.result_id, ack.error, ack.is_success) == (
        AckStatus.SUCCESS,
        "INC-42",
        None,
        True,
    )
    assert status_of(store, run) == {"a": AuditStatus.ACKED}


def test_a_block_that_raises_acks_a_failure_and_reraises(store: AuditStore) -> None:
    run = declared(store, "a")
    with pytest.raises(ValueError, match="engine down"), store.audited(run, "d", "a"):
        raise ValueError("engine down")
    ack = only_ack(store, run)
    assert (ack.status, ack.error) == (AckStatus.FAILED, "ValueError: engine down")
    assert not ack.is_success
    assert status_of(store, run) == {"a": AuditStatus.FAILED}


def test_rollback_acks_rolled_back_even_when_the_block_ends(store: AuditStore) -> None:
    run = declared(store, "a", "b")
    with store.audited(run, "d", "a", result_id="R-1") as act:
        act.rollback("payment refused")
    with pytest.raises(KeyError), store.audited(run, "d", "b") as act:
        act.rollback("half done")
        raise KeyError("x")
    first, second = store.get_acks(run)
    assert (first.status, first.rolled_back, first.rollback_reason, first.result_id) == (
        AckStatus.ROLLED_BACK,
        True,
        "payment refused",
        "R-1",
    )
    assert first.error is None and not first.is_success
    assert (second.rolled_back, second.error) == (True, "KeyError: 'x'")
    assert status_of(store, run) == {"a": AuditStatus.FAILED, "b": AuditStatus.FAILED}


def test_keyboard_interrupt_is_a_failure(store: AuditStore) -> None:
    run = declared(store, "a")
    with pytest.raises(KeyboardInterrupt), store.audited(run, "d", "a"):
        raise KeyboardInterrupt
    assert only_ack(store, run).error == "KeyboardInterrupt: (no message)"


def test_a_long_message_is_cut(store: AuditStore) -> None:
    run = declared(store, "a")
    with pytest.raises(RuntimeError), store.audited(run, "d", "a"):
        raise RuntimeError("x" * 100_000)
    error = only_ack(store, run).error
    assert error is not None and len(error) == MAX_ERROR_CHARS
    assert error.startswith("RuntimeError: xxx") and error.endswith("…")


def test_bad_names_fail_before_the_block_runs(store: AuditStore) -> None:
    ran = []
    with pytest.raises(InvalidInputError):  # noqa: SIM117
        with store.audited(uuid.uuid4(), "d|x", "a"):
            ran.append(1)
    with pytest.raises(InvalidInputError):
        store.audited("not-a-run", "d", "a")
    with pytest.raises(InvalidInputError):
        store.audit("d", "")
    assert ran == []


def test_decorator_takes_the_run_id_from_the_arguments(store: AuditStore) -> None:
    run = declared(store, "create", "close")

    @store.audit("d", "create", run_id_arg="run")
    def create(title: str, run: uuid.UUID, *, urgent: bool = False) -> str:
        action = current_action()
        assert action is not None and action.run_id == run
        action.result_id = f"INC-{title}"
        return title.upper()

    @store.audit("d", "close")
    def close(run_id: str) -> None:
        raise TimeoutError("ticketing did not answer")

    assert create("db", run) == "DB"  # positional run id
    with pytest.raises(TimeoutError):
        close(run_id=str(run))
    created, closed = store.get_acks(run)
    assert (created.action, created.result_id, created.is_success) == ("create", "INC-db", True)
    assert (closed.action, closed.error) == ("close", "TimeoutError: ticketing did not answer")
    assert create.__name__ == "create"  # functools.wraps


def test_decorator_needs_the_run_id_parameter(store: AuditStore) -> None:
    with pytest.raises(TypeError, match="no parameter 'run_id'"):

        @store.audit("d", "a")
        def job(run: str) -> None: ...


def test_sync_store_decorates_a_coroutine_function(store: AuditStore) -> None:
    run = declared(store, "a")

    @store.audit("d", "a")
    async def job(run_id: uuid.UUID) -> int:
        await asyncio.sleep(0)
        return 7

    assert asyncio.run(job(run)) == 7
    assert only_ack(store, run).is_success


class _Unreachable:
    """A store whose every ack fails as a lost Redis would."""

    def add_ack(self, run_id: Any, ack: DomainAck) -> None:
        raise StoreUnavailableError("add_ack: connection refused")


def test_an_ack_that_cannot_be_sent_raises_the_store_error() -> None:
    from rac_store.audited import Audited

    with pytest.raises(StoreUnavailableError) as raised:  # noqa: SIM117
        with Audited(_Unreachable(), uuid.uuid4(), "d", "a"):
            raise ValueError("the block's own error")
    assert isinstance(raised.value.__context__, ValueError)


# -- asyncio ---------------------------------------------------------------------------
@pytest.fixture(params=("async-embedded", "async-redis"))
def make_async_store(request: pytest.FixtureRequest) -> Any:
    if request.param == "async-embedded":
        server = create_embedded_server()

        def make(**options: Any) -> AsyncAuditStore:
            return AsyncAuditStore(create_embedded_async_client(server), metrics=False, **options)

        return make
    request.getfixturevalue("redis_client")  # empties the server
    url = request.getfixturevalue("redis_server").url

    def make_redis(**options: Any) -> AsyncAuditStore:
        return AsyncAuditStore.from_url(url, metrics=False, **options)

    return make_redis


async def _declare(store: AsyncAuditStore, *actions: str) -> uuid.UUID:
    run = uuid.uuid4()
    await store.add_expectations(run, [AuditExpectation(run, "d", a, LONG) for a in actions])
    return run


@pytest.mark.parametrize("autopipeline", [True, False])
def test_async_outcomes(make_async_store: Any, autopipeline: bool) -> None:
    async def main() -> list[DomainAck]:
        async with make_async_store(autopipeline=autopipeline) as store:
            run = await _declare(store, "ok", "bad")
            async with store.audited(run, "d", "ok") as act:
                act.result_id = "R"
            with pytest.raises(OSError):
                async with store.audited(run, "d", "bad"):
                    raise OSError("disk full")
            return await store.get_acks(run)

    ok, bad = asyncio.run(main())
    assert (ok.status, ok.result_id) == (AckStatus.SUCCESS, "R")
    assert (bad.status, bad.error) == (AckStatus.FAILED, "OSError: disk full")


@pytest.mark.parametrize("message", [None, "shutting down"])
def test_a_cancelled_block_acks_a_failure(make_async_store: Any, message: str | None) -> None:
    """Cancellation is a failure: ``CancelledError: <message>``, never a success."""

    async def main() -> tuple[list[DomainAck], dict[str, AuditStatus]]:
        async with make_async_store() as store:
            run = await _declare(store, "a")
            inside = asyncio.Event()

            async def worker() -> None:
                async with store.audited(run, "d", "a"):
                    inside.set()
                    await asyncio.Event().wait()  # never ends on its own

            task = asyncio.create_task(worker())
            await inside.wait()
            task.cancel(message)
            with pytest.raises(asyncio.CancelledError):
                await task
            acks = await store.get_acks(run)
            return acks, {e.action: e.status for e in await store.get_expectations(run)}

    acks, statuses = asyncio.run(main())
    (ack,) = acks
    expected = f"CancelledError: {message or 'cancelled before the block finished'}"
    assert (ack.status, ack.error, ack.is_success) == (AckStatus.FAILED, expected, False)
    assert statuses == {"a": AuditStatus.FAILED}


class _SlowAcks:
    """Delegates to a store, but each ack waits for ``release`` before it is sent."""

    def __init__(self, store: AsyncAuditStore) -> None:
        self.store = store
        self.sending = asyncio.Event()
        self.release = asyncio.Event()

    async def add_ack(self, run_id: Any, ack: DomainAck) -> Any:
        self.sending.set()
        await self.release.wait()
        return await self.store.add_ack(run_id, ack)


def test_a_second_cancellation_while_the_ack_is_sent_does_not_stop_it(
    make_async_store: Any,
) -> None:
    from rac_store.aio.audited import AsyncAudited

    async def main() -> list[DomainAck]:
        async with make_async_store() as store:
            run = await _declare(store, "a")
            slow = _SlowAcks(store)
            inside = asyncio.Event()

            async def worker() -> None:
                async with AsyncAudited(slow, run, "d", "a"):
                    inside.set()
                    await asyncio.Event().wait()

            task = asyncio.create_task(worker())
            await inside.wait()
            task.cancel()
            await slow.sending.wait()  # the failure ack is on its way ...
            task.cancel()  # ... and the task is cancelled again
            with pytest.raises(asyncio.CancelledError):
                await task
            slow.release.set()
            for _ in range(100):
                acks = await store.get_acks(run)
                if acks:
                    return acks
                await asyncio.sleep(0.01)
            return []

    (ack,) = asyncio.run(main())
    assert ack.error == "CancelledError: cancelled before the block finished"


def test_async_decorator(make_async_store: Any) -> None:
    async def main() -> list[DomainAck]:
        async with make_async_store() as store:
            run = await _declare(store, "a", "b")

            @store.audit("d", "a")
            async def good(run_id: uuid.UUID) -> str:
                action = current_action()
                assert isinstance(action, AuditedAction)
                action.result_id = "X"
                return "done"

            @store.audit("d", "b", run_id_arg="rid")
            async def bad(rid: uuid.UUID) -> None:
                raise LookupError("no such policy")

            assert await good(run) == "done"
            with pytest.raises(LookupError):
                await bad(rid=run)
            with pytest.raises(TypeError, match="not a coroutine function"):

                @store.audit("d", "a")
                def plain(run_id: uuid.UUID) -> None: ...

            return await store.get_acks(run)

    good, bad = asyncio.run(main())
    assert (good.result_id, good.is_success) == ("X", True)
    assert bad.error == "LookupError: no such policy"
