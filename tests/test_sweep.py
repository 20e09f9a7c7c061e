"""The deadline sweep: what it marks, how it keeps the index, its bounds, expired runs."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from typing import Any

import pytest

from rac_store import (
    AuditExpectation,
    AuditStatus,
    AuditStore,
    FindingType,
    InvalidInputError,
    create_domain_ack,
)
from rac_store.reconciler import AuditReconciler
from rac_store.scripts import ScriptCall

from .support.snapshot import snapshot

LONG = 600_000


def declare(store: AuditStore, run: uuid.UUID, *deadlines: int) -> list[str]:
    """One expectation per deadline, actions a0, a1, ...; returns the actions."""
    actions = [f"a{i}" for i in range(len(deadlines))]
    store.add_expectations(
        run, [AuditExpectation(run, "d", a, ms) for a, ms in zip(actions, deadlines, strict=True)]
    )
    return actions


def overdue() -> None:
    time.sleep(0.003)


@pytest.fixture
def rec(store: AuditStore) -> AuditReconciler:
    return AuditReconciler(store, metrics=False)


def index_score(store: AuditStore, client: Any, run: uuid.UUID) -> Any:
    return client.zscore(store.core.keys.for_run(str(run)).pending, str(run))


def test_marks_only_overdue_pending_and_rescores(
    store: AuditStore, rec: AuditReconciler, raw_client: Any
) -> None:
    run = uuid.uuid4()
    declare(store, run, 0, 0, LONG, LONG)
    store.add_ack(run, create_domain_ack(run, "d", "a2"))
    overdue()
    report = rec.sweep()
    assert report.runs_swept == 1 and not report.more_due
    assert sorted((f.type, f.action) for f in report.findings) == [
        (FindingType.MISSING, "a0"),
        (FindingType.MISSING, "a1"),
    ]
    assert all(f.run_id == str(run) and f.due_ms <= report.now_ms for f in report.findings)
    statuses = {e.action: e.status for e in store.get_expectations(run)}
    assert statuses == {
        "a0": AuditStatus.MISSING,
        "a1": AuditStatus.MISSING,
        "a2": AuditStatus.ACKED,
        "a3": AuditStatus.PENDING,
    }
    due = raw_client.zscore(store.core.keys.for_run(str(run))[3], "d|a3")
    assert (
        index_score(store, raw_client, run) == due > report.now_ms
    )  # re-scored to the next due time
    assert rec.sweep().findings == []  # nothing marked twice


def test_run_leaves_the_index_when_nothing_is_pending(
    store: AuditStore, rec: AuditReconciler, raw_client: Any
) -> None:
    run = uuid.uuid4()
    declare(store, run, 0)
    overdue()
    assert store.get_pending_run_ids() == [str(run)]
    assert len(rec.sweep().missing) == 1
    assert store.get_pending_run_ids() == [] and index_score(store, raw_client, run) is None


def test_limit_bounds_the_runs_per_call(store: AuditStore, rec: AuditReconciler) -> None:
    runs = [uuid.uuid4() for _ in range(7)]
    for run in runs:
        declare(store, run, 0)
        time.sleep(0.002)  # distinct due times: earliest first is observable
    declare(store, uuid.uuid4(), LONG)  # not due: never taken
    overdue()
    first = rec.sweep(limit=3)
    assert first.runs_swept == 3 and first.more_due
    assert [f.run_id for f in first.findings] == [str(r) for r in runs[:3]]
    second = rec.sweep(limit=3)
    assert [f.run_id for f in second.findings] == [str(r) for r in runs[3:6]] and second.more_due
    third = rec.sweep(limit=3)
    assert [f.run_id for f in third.findings] == [str(runs[6])] and not third.more_due
    assert rec.sweep(limit=3).runs_swept == 0


def test_marks_per_run_bounds_one_script_call(
    store: AuditStore, rec: AuditReconciler, raw_client: Any
) -> None:
    run = uuid.uuid4()
    declare(store, run, *[0] * 5)
    overdue()
    report = rec.sweep(marks_per_run=2)
    assert len(report.missing) == 2 and report.more_due
    assert (
        index_score(store, raw_client, run) <= report.now_ms
    )  # still due: the next call continues
    assert len(rec.sweep(marks_per_run=2).missing) == 2
    last = rec.sweep(marks_per_run=2)
    assert len(last.missing) == 1 and not last.more_due
    marked = [f.action for f in rec.iter_findings() if f.type is FindingType.MISSING]
    assert sorted(marked) == [f"a{i}" for i in range(5)]
    settled = [f for f in rec.iter_findings() if f.type is not FindingType.MISSING]
    assert [(f.type, f.source, f.details["missing"]) for f in settled] == [
        (FindingType.INCOMPLETE, "sweep", "5")  # pushed once, by the call that settled the run
    ]


def test_expired_runs_leave_the_index_as_findings(store_factory: Any) -> None:
    store = store_factory(ttl_seconds=1)
    rec = AuditReconciler(store, metrics=False)
    expired, alive = uuid.uuid4(), uuid.uuid4()
    declare(store, expired, 0)
    time.sleep(1.2)  # the run's keys expire; its index entry does not
    declare(store, alive, 0)
    overdue()
    assert str(expired) in store.get_pending_run_ids()
    report = rec.sweep()
    assert [(f.type, f.run_id) for f in report.findings] == [
        (FindingType.EXPIRED, str(expired)),
        (FindingType.MISSING, str(alive)),
    ]
    assert report.expired[0].due_ms is not None
    assert store.get_pending_run_ids() == []
    events = [(e.type, e.run_id) for e in rec.iter_findings()]
    assert (FindingType.EXPIRED, str(expired)) in events


def test_deleted_run_keys_are_reported_expired(
    store: AuditStore, rec: AuditReconciler, raw_client: Any
) -> None:
    run = uuid.uuid4()
    declare(store, run, 0, LONG)
    raw_client.delete(*store.core.keys.for_run(str(run)).run_keys)
    overdue()
    report = rec.sweep()
    assert [f.type for f in report.findings] == [FindingType.EXPIRED]
    assert rec.sweep().findings == []


def test_the_script_is_idempotent_and_knows_unknown_runs(
    store: AuditStore, rec: AuditReconciler, raw_client: Any
) -> None:
    run = uuid.uuid4()
    declare(store, run, 0, 0)
    overdue()
    call = store.core.sweep_run(run)
    first, second = store.execute(call), store.execute(call)  # a re-sent call
    assert first[0] == 0 and len(first) == 3 + 2 * 3
    assert second[0] == 0 and len(second) == 3  # nothing left to mark
    kinds = [e.type for e in rec.iter_findings()]
    assert kinds == [FindingType.MISSING, FindingType.MISSING, FindingType.INCOMPLETE]
    before = snapshot(raw_client)
    assert store.execute(store.core.sweep_run(uuid.uuid4()))[0] == 2
    assert snapshot(raw_client) == before


def test_a_run_acked_after_it_was_picked_is_left_alone(
    store: AuditStore, rec: AuditReconciler
) -> None:
    run = uuid.uuid4()
    declare(store, run, 0)
    overdue()
    store.add_ack(run, create_domain_ack(run, "d", "a0"))  # late, between index read and sweep
    reply = store.execute(store.core.sweep_run(run))
    assert list(reply[:1]) == [0] and reply[2] == -1 and len(reply) == 3
    assert store.get_expectations(run)[0].status is AuditStatus.ACKED


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "3"])
def test_python_validation(rec: AuditReconciler, bad: Any) -> None:
    with pytest.raises(InvalidInputError):
        rec.sweep(limit=bad)
    with pytest.raises(InvalidInputError):
        rec.sweep(marks_per_run=bad)


def test_marks_per_run_is_capped(rec: AuditReconciler) -> None:
    assert rec.sweep(marks_per_run=1000).findings == []
    with pytest.raises(InvalidInputError):
        rec.sweep(marks_per_run=1001)


@pytest.mark.parametrize(
    ("index", "value"),
    [(0, "0"), (0, "x"), (1, ""), (2, "0"), (2, "-3"), (2, "1001"), (3, "0"), (3, "1.5")],
)
def test_lua_validation_writes_nothing(
    store: AuditStore, raw_client: Any, index: int, value: str
) -> None:
    run = uuid.uuid4()
    declare(store, run, 0)
    overdue()
    good = store.core.sweep_run(run)
    args = list(good.args)
    args[index] = value
    before = snapshot(raw_client)
    with pytest.raises(InvalidInputError):
        store.execute(ScriptCall("sweep_run", good.keys, args, "sweep"))
    with pytest.raises(InvalidInputError):
        store.execute(ScriptCall("sweep_run", good.keys[:6], good.args, "sweep"))
    assert snapshot(raw_client) == before


def _sweeper(url: str, start: Any, results: Any) -> None:
    """In a worker process: sweep until nothing is due; report the marks it made."""
    store = AuditStore.from_url(url, metrics=False)
    rec = AuditReconciler(store, metrics=False)
    marks = 0
    start.wait()
    while True:
        report = rec.sweep(limit=20, marks_per_run=2)
        marks += len(report.missing)
        if report.runs_swept == 0:
            break
    store.close()
    results.put(marks)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["redis"])
def test_concurrent_sweepers_mark_each_expectation_once(
    store: AuditStore, rec: AuditReconciler, redis_server: Any
) -> None:
    runs = [uuid.uuid4() for _ in range(600)]
    for run in runs:
        declare(store, run, 0, 0, 0, LONG)
    overdue()
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_sweeper, args=(redis_server.url, start, results)) for _ in range(4)
    ]
    for proc in procs:
        proc.start()
    marks = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert sum(marks) == 3 * len(runs)
    assert sum(m > 0 for m in marks) >= 2, marks  # they did sweep at the same time
    events = [e for e in rec.iter_findings() if e.type is FindingType.MISSING]
    assert len(events) == len({(e.run_id, e.action) for e in events}) == 3 * len(runs)
    assert store.get_pending_run_ids(due_before=store.server_time_ms()) == []
