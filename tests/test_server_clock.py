"""The server's clock decides every deadline; no client clock does.

The server's clock is moved a day away from the client's (the embedded server
shifted in-process, a real Valkey under libfaketime), while the client keeps
the machine's clock in every form it has (``time.time``, ``time.time_ns``,
``datetime.now``, ...). A decision taken anywhere on a client clock would then
be a day off: a declared deadline would look long passed (server behind) or a
day away (server ahead). Every operation that decides by time runs here, sync
and async: ack outcome, manual late mark, sweep, the pending read, reconcile,
deadline violations, ``get_pending_run_ids(due_before=server_time_ms())``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.asyncio

from rac_store import (
    AckOutcome,
    AsyncAuditReconciler,
    AuditExpectation,
    AuditReconciler,
    AuditStatus,
    AuditStore,
    FindingType,
    ReconciliationStatus,
    create_domain_ack,
)
from rac_store.embedded import (
    create_embedded_async_client,
    create_embedded_client,
    create_embedded_server,
)

from .support.async_facade import LoopThread, SyncFacade
from .support.skewed_clock import DAY_S, SkewedServer, embedded_clock_shifted

AHEAD, BEHIND = DAY_S, -DAY_S
Stores = tuple[Any, Any]  # (store, reconciler) with the sync API


@pytest.fixture(params=["embedded", "real"])
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def open_stores(kind: str, api: str, seconds: int, loop_thread: LoopThread) -> Iterator[Stores]:
    """A store and a reconciler on a server ``seconds`` off the client's clock."""
    if kind == "embedded":
        server = create_embedded_server()
        with embedded_clock_shifted(seconds):
            if api == "sync":
                store = AuditStore(create_embedded_client(server), metrics=False)
                yield store, AuditReconciler(store, metrics=False)
                return
            facade = SyncFacade.open(
                loop_thread, lambda: create_embedded_async_client(server), metrics=False
            )
            yield facade, SyncFacade(AsyncAuditReconciler(facade.async_store), loop_thread)
            facade.close()
        return
    real = SkewedServer(seconds).start()
    try:
        if api == "sync":
            store = AuditStore(real.client(), metrics=False)
            yield store, AuditReconciler(store, metrics=False)
            store.close()
        else:
            facade = SyncFacade.open(
                loop_thread, lambda: redis.asyncio.Redis(port=real.port), metrics=False
            )
            yield facade, SyncFacade(AsyncAuditReconciler(facade.async_store), loop_thread)
            facade.close()
    finally:
        real.cleanup()


@pytest.fixture
def skewed(
    server_kind: str,
    api: str,
    loop_thread: LoopThread,
) -> Iterator[Callable[[int], Stores]]:
    """Opens the stores of the test's server kind and API with a given clock offset."""
    opened: list[Iterator[Stores]] = []

    def open_with(seconds: int) -> Stores:
        stores = open_stores(server_kind, api, seconds, loop_thread)
        opened.append(stores)
        return next(stores)

    yield open_with
    for stores in opened:
        for _ in stores:  # runs the clean-up after the yield
            pass


def client_now_ms() -> int:
    return time.time_ns() // 1_000_000


def assert_server_is_off(store: Any, seconds: int) -> int:
    """The premise: the server's clock really is ``seconds`` away from the client's."""
    server_now = int(store.server_time_ms())
    assert abs(server_now - client_now_ms() - seconds * 1000) < 60_000
    return server_now


def test_server_behind_nothing_is_overdue_that_the_client_thinks_a_day_late(
    skewed: Callable[[int], Stores],
) -> None:
    store, rec = skewed(BEHIND)
    server_now = assert_server_is_off(store, BEHIND)
    run = uuid.uuid4()
    store.add_expectations(
        run, [AuditExpectation(run, "d", action, 600_000) for action in ("a", "b", "c")]
    )
    # by the client's clock every deadline passed a day ago; by the server's, none has
    assert store.add_ack(run, create_domain_ack(run, "d", "a")) is AckOutcome.RECORDED
    assert store.update_expectation_status(run, "d", "b", AuditStatus.ACKED) is True
    assert rec.sweep().findings == []
    assert rec.pending(due_only=True).runs == []
    assert store.get_pending_run_ids(due_before=store.server_time_ms()) == []
    assert rec.check_deadline_violations(run) == []
    result = rec.reconcile(run, record=False)
    assert (result.status, result.pending_actions, result.missing_actions) == (
        ReconciliationStatus.IN_PROGRESS,
        [("d", "c")],
        [],
    )
    states = {e.action: (e.status, e.late) for e in store.get_expectations(run)}
    assert states == {
        "a": (AuditStatus.ACKED, False),
        "b": (AuditStatus.ACKED, False),
        "c": (AuditStatus.PENDING, False),
    }
    acked_at = store.get_expectations(run)[0].acked_at
    assert acked_at is not None and abs(acked_at.timestamp() * 1000 - server_now) < 60_000


def test_server_ahead_deadlines_pass_that_the_client_thinks_a_day_away(
    skewed: Callable[[int], Stores],
) -> None:
    store, rec = skewed(AHEAD)
    assert_server_is_off(store, AHEAD)
    run = uuid.uuid4()
    store.add_expectations(
        run, [AuditExpectation(run, "d", action, 1) for action in ("a", "b", "c")]
    )
    declared = store.server_time_ms()
    while store.server_time_ms() <= declared + 1:  # the server's clock passes the deadlines
        time.sleep(0.002)
    # by the client's clock every deadline is a day away; by the server's, all have passed
    assert store.add_ack(run, create_domain_ack(run, "d", "a")) is AckOutcome.LATE
    assert store.update_expectation_status(run, "d", "b", AuditStatus.ACKED) is True
    assert rec.pending(due_only=True).runs[0].run_id == str(run)
    assert store.get_pending_run_ids(due_before=store.server_time_ms()) == [str(run)]
    assert [e.action for e in rec.check_deadline_violations(run)] == ["a", "b", "c"]
    result = rec.reconcile(run, record=False)
    assert (result.status, result.missing_actions) == (
        ReconciliationStatus.INCOMPLETE,
        [("d", "c")],
    )
    report = rec.sweep()
    assert [(f.type, f.action) for f in report.findings] == [(FindingType.MISSING, "c")]
    states = {e.action: (e.status, e.late) for e in store.get_expectations(run)}
    assert states == {
        "a": (AuditStatus.ACKED, True),
        "b": (AuditStatus.ACKED, True),
        "c": (AuditStatus.MISSING, False),
    }
