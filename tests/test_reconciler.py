"""AuditReconciler.reconcile: each finding, their combinations, and the tricky acks.

Every test runs on both backends. Short deadlines are 0 ms (overdue as soon as
the server clock moves on); long ones are 10 minutes.
"""

from __future__ import annotations

import json
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
    ReconciliationStatus,
    RunNotFoundError,
    create_domain_ack,
    create_run_expectations,
    get_audit_reconciler,
    get_audit_store,
)
from rac_store.reconciler import AuditReconciler

LONG = 600_000
SHORT = 0


def expect(run: uuid.UUID, *pairs: tuple[str, str, int], liveness: bool = False) -> list[Any]:
    """Expectations (domain, action, deadline_ms); the last is a liveness check if asked."""
    exps = [AuditExpectation(run, d, a, ms) for d, a, ms in pairs]
    if liveness:
        exps[-1].metadata = {"is_liveness_check": True}
    return exps


def ack(
    store: AuditStore, run: uuid.UUID, domain: str, action: str, error: str | None = None
) -> Any:
    return store.add_ack(run, create_domain_ack(run, domain, action, error=error))


def overdue() -> None:
    time.sleep(0.003)  # the server clock passes every 0 ms deadline


@pytest.fixture
def rec(store: AuditStore) -> AuditReconciler:
    return AuditReconciler(store, metrics=False)


@pytest.fixture
def run() -> uuid.UUID:
    return uuid.uuid4()


def test_complete_run(store: AuditStore, rec: AuditReconciler, run: uuid.UUID) -> None:
    store.add_expectations(run, create_run_expectations(run))
    for exp in create_run_expectations(run):
        ack(store, run, *exp.key())
    result = rec.reconcile(run)
    assert result.status is ReconciliationStatus.COMPLETE
    assert result.is_clean and not result.has_missing and not result.has_drift
    assert (result.expectations_count, result.acks_count) == (4, 4)
    assert result.run_id == run


def test_missing_before_and_after_the_sweep(
    store: AuditStore, rec: AuditReconciler, run: uuid.UUID
) -> None:
    store.add_expectations(run, expect(run, ("a", "x", LONG), ("b", "y", SHORT)))
    ack(store, run, "a", "x")
    overdue()
    before = rec.reconcile(run, record=False)  # PENDING past due already counts as missing
    assert before.missing_actions == [("b", "y")]
    assert before.status is ReconciliationStatus.INCOMPLETE
    assert [f.domain for f in rec.sweep().findings] == ["b"]
    after = rec.reconcile(run, record=False)
    assert after.missing_actions == [("b", "y")] and after.has_missing
    assert store.get_expectations(run)[1].status is AuditStatus.MISSING


def test_pending_not_yet_due_is_not_missing(
    store: AuditStore, rec: AuditReconciler, run: uuid.UUID
) -> None:
    store.add_expectations(run, create_run_expectations(run))
    ack(store, run, "incidents", "create_incident")
    result = rec.reconcile(run)
    assert result.status is ReconciliationStatus.IN_PROGRESS
    assert result.missing_actions == [] and not result.stale_run
    assert not result.is_clean  # what is pending may never come: only COMPLETE is clean
    assert len(result.pending_actions) == 3
    assert rec.sweep().findings == []


def test_failed(store: AuditStore, rec: AuditReconciler, run: uuid.UUID) -> None:
    store.add_expectations(run, expect(run, ("a", "x", LONG), ("b", "y", LONG)))
    ack(store, run, "a", "x")
    ack(store, run, "b", "y", error="boom")
    result = rec.reconcile(run)
    assert result.failed_actions == [("b", "y")]
    assert result.status is ReconciliationStatus.INCOMPLETE and not result.is_clean


def test_drift_alone_makes_a_run_incomplete(
    store: AuditStore, rec: AuditReconciler, run: uuid.UUID
) -> None:
    store.add_expectations(run, expect(run, ("a", "x", LONG)))
    ack(store, run, "a", "x")
    ack(store, run, "z", "undeclared")
    ack(store, run, "z", "failed_undeclared", error="boom")
    result = rec.reconcile(run)
    assert result.drift_actions == [("z", "failed_undeclared"), ("z", "undeclared")]
    assert result.failed_actions == []  # a failed drift ack is drift, not failed
    assert result.has_drift and result.status is ReconciliationStatus.INCOMPLETE
    assert result.acks_count == 3


def test_stale_when_the_liveness_check_is_missing(
    store: AuditStore, rec: AuditReconciler, run: uuid.UUID
) -> None:
    store.add_expectations(run, create_run_expectations(run, run_timeout_ms=0, grace_period_ms=0))
    for action in (("incidents", "create_incident"), ("policies", "evaluate_policy")):
        ack(store, run, *action)
    overdue()
    result = rec.reconcile(run)
    assert result.stale_run
    assert result.status is ReconciliationStatus.STALE  # STALE wins over INCOMPLETE
    assert result.missing_actions == [("logs", "start_trace"), ("orchestrator", "finalize_run")]


def test_a_failed_liveness_check_is_failed_not_stale(
    store: AuditStore, rec: AuditReconciler, run: uuid.UUID
) -> None:
    store.add_expectations(run, expect(run, ("a", "x", LONG), ("o", "fin", SHORT), liveness=True))
    ack(store, run, "a", "x")
    ack(store, run, "o", "fin", error="crashed in finalize")
    result = rec.reconcile(run)
    assert not result.stale_run and result.failed_actions == [("o", "fin")]
    assert result.status is ReconciliationStatus.INCOMPLETE


def test_every_finding_at_once(store: AuditStore, rec: AuditReconciler, run: uuid.UUID) -> None:
    pairs = (("a", "miss", SHORT), ("b", "fail", LONG), ("c", "wait", LONG), ("o", "fin", SHORT))
    store.add_expectations(run, expect(run, *pairs, liveness=True))
    ack(store, run, "b", "fail", error="boom")
    ack(store, run, "d", "drift")
    overdue()
    result = rec.reconcile(run)
    assert result.missing_actions == [("a", "miss"), ("o", "fin")]
    assert result.failed_actions == [("b", "fail")]
    assert result.drift_actions == [("d", "drift")]
    assert result.pending_actions == [("c", "wait")]
    assert result.stale_run and result.status is ReconciliationStatus.STALE
    as_json = json.loads(json.dumps(result.to_dict()))
    assert as_json["status"] == "STALE" and as_json["missing_actions"][0] == ["a", "miss"]


def test_duplicate_acks_count_once(store: AuditStore, rec: AuditReconciler, run: uuid.UUID) -> None:
    store.add_expectations(run, expect(run, ("a", "x", LONG)))
    first = create_domain_ack(run, "a", "x")
    store.add_acks(run, [first, first])
    store.add_ack(run, first)
    result = rec.reconcile(run)
    assert result.status is ReconciliationStatus.COMPLETE and result.acks_count == 1


def test_late_acks_are_not_findings_but_violations(
    store: AuditStore, rec: AuditReconciler, run: uuid.UUID
) -> None:
    store.add_expectations(run, expect(run, ("a", "swept", SHORT), ("b", "unswept", SHORT)))
    overdue()
    rec.sweep()  # both marked MISSING ...
    ack(store, run, "a", "swept")  # ... then one arrives
    store.add_expectations(run, expect(run, ("c", "late_pending", SHORT)))
    overdue()
    ack(store, run, "c", "late_pending")  # PENDING past due, never swept
    result = rec.reconcile(run)
    assert result.missing_actions == [("b", "unswept")]
    assert result.late_actions == [("a", "swept"), ("c", "late_pending")]
    violations = {e.key(): e.status for e in rec.check_deadline_violations(run)}
    assert violations == {
        ("a", "swept"): AuditStatus.ACKED,
        ("b", "unswept"): AuditStatus.MISSING,
        ("c", "late_pending"): AuditStatus.ACKED,
    }


def test_out_of_order_ack_before_its_expectation(
    store: AuditStore, rec: AuditReconciler, run: uuid.UUID
) -> None:
    ack(store, run, "a", "x")
    ack(store, run, "b", "y", error="boom")
    assert rec.reconcile(run, record=False).drift_actions == [("a", "x"), ("b", "y")]
    store.add_expectations(run, expect(run, ("a", "x", LONG), ("b", "y", LONG)))
    result = rec.reconcile(run)
    assert result.drift_actions == [] and result.missing_actions == []
    assert result.failed_actions == [("b", "y")]


def test_failed_then_successful_retry(
    store: AuditStore, rec: AuditReconciler, run: uuid.UUID
) -> None:
    store.add_expectations(run, expect(run, ("a", "x", LONG), ("b", "y", LONG)))
    ack(store, run, "a", "x", error="transient")
    ack(store, run, "b", "y", error="first")
    ack(store, run, "b", "y", error="second")  # failing again: still failed
    assert rec.reconcile(run).failed_actions == [("a", "x"), ("b", "y")]
    ack(store, run, "a", "x")
    result = rec.reconcile(run)
    assert result.failed_actions == [("b", "y")] and result.acks_count == 4
    ack(store, run, "b", "y")
    assert rec.reconcile(run).status is ReconciliationStatus.COMPLETE


def test_reconcile_records_a_verdict_only_when_it_is_new(
    store: AuditStore, rec: AuditReconciler, run: uuid.UUID
) -> None:
    """The settling ack pushed COMPLETE / INCOMPLETE already; reconcile adds only STALE,
    once, for the run nothing settled (its liveness check is overdue, not yet swept)."""
    clean, stale = uuid.uuid4(), uuid.uuid4()
    store.add_expectations(clean, expect(clean, ("a", "x", LONG)))
    ack(store, clean, "a", "x")
    store.add_expectations(stale, expect(stale, ("o", "fin", SHORT), liveness=True))
    store.add_expectations(run, expect(run, ("a", "x", LONG)))
    ack(store, run, "a", "x", error="boom")
    overdue()
    for _ in range(3):  # repeated reconciles record nothing more
        for each in (clean, stale, run):
            rec.reconcile(each)
    rec.reconcile(run, record=False)
    events = sorted((e.type, e.run_id, e.source) for e in rec.iter_findings())
    assert events == sorted(
        [
            (FindingType.COMPLETE, str(clean), "ack"),
            (FindingType.STALE, str(stale), "reconcile"),
            (FindingType.INCOMPLETE, str(run), "ack"),
        ]
    )
    incomplete = next(e for e in rec.iter_findings() if e.type is FindingType.INCOMPLETE)
    assert incomplete.details["failed"] == "1"
    assert json.loads(incomplete.details["failed_actions"]) == [["a", "x"]]
    rec.sweep()  # marks the liveness check MISSING: the run settles STALE, already pushed
    assert [e.type for e in rec.iter_findings() if e.run_id == str(stale)] == [
        FindingType.STALE,
        FindingType.MISSING,
    ]


def test_summary(store: AuditStore, rec: AuditReconciler, run: uuid.UUID) -> None:
    store.add_expectations(run, expect(run, ("a", "x", LONG), ("b", "y", LONG)))
    ack(store, run, "a", "x")
    summary = rec.get_run_audit_summary(run)
    assert summary["status"] == "IN_PROGRESS"
    assert summary["by_status"] == {"PENDING": 1, "ACKED": 1, "MISSING": 0, "FAILED": 0}
    assert summary["next_due_ms"] > summary["server_time_ms"]
    assert summary["expectations"] == 2 and summary["acks"] == 1
    assert json.loads(json.dumps(summary))["result"]["pending_actions"] == [["b", "y"]]
    assert [e for e in rec.iter_findings() if e.source == "reconcile"] == []  # nothing recorded


def test_unknown_and_invalid_runs(store: AuditStore, rec: AuditReconciler) -> None:
    for method in (rec.reconcile, rec.check_deadline_violations, rec.get_run_audit_summary):
        with pytest.raises(RunNotFoundError):
            method(uuid.uuid4())
        with pytest.raises(InvalidInputError):
            method("not-a-uuid")


def test_a_cleared_run_is_not_found(
    store: AuditStore, rec: AuditReconciler, run: uuid.UUID
) -> None:
    store.add_expectations(run, expect(run, ("a", "x", LONG)))
    assert rec.reconcile(run).status is ReconciliationStatus.IN_PROGRESS
    store.clear_run(run)
    with pytest.raises(RunNotFoundError):
        rec.reconcile(run)


def test_an_acks_only_run_is_all_drift(
    store: AuditStore, rec: AuditReconciler, run: uuid.UUID
) -> None:
    ack(store, run, "a", "x")
    result = rec.reconcile(run)
    assert result.drift_actions == [("a", "x")] and result.expectations_count == 0
    assert result.status is ReconciliationStatus.INCOMPLETE


def test_get_audit_reconciler_follows_the_process_store() -> None:
    first = get_audit_reconciler()
    assert first.store is get_audit_store() and get_audit_reconciler() is first
    other = AuditStore()
    assert get_audit_reconciler(other).store is other
    assert get_audit_reconciler().store is get_audit_store()
