"""Verdicts users can trust: failures never read as success, every run judged, once.

On every backend (embedded, redis, redis-acl as the worker, cluster, and the asyncio
store behind its facade).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from rac_store import (
    AckOutcome,
    AckStatus,
    AuditExpectation,
    AuditStatus,
    AuditStore,
    DomainAck,
    FindingType,
    InvalidInputError,
    ReconciliationStatus,
    RunNotFoundError,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.reconciler import AuditReconciler

from .support.snapshot import snapshot

LONG = 600_000


@pytest.fixture
def rec(store: AuditStore) -> AuditReconciler:
    return AuditReconciler(store, metrics=False)


def statuses(store: AuditStore, run: uuid.UUID) -> dict[tuple[str, str], AuditStatus]:
    return {e.key(): e.status for e in store.get_expectations(run)}


def verdicts(rec: AuditReconciler, run: uuid.UUID) -> list[tuple[FindingType, str]]:
    """The run's verdict events (not its MISSING marks), with their source."""
    return [
        (e.type, e.source)
        for e in rec.iter_findings()
        if e.run_id == str(run) and e.type is not FindingType.MISSING
    ]


# -- an error ack is a failure, whatever its status says --------------------------------
def test_an_ack_with_an_error_and_the_default_status_is_a_failure(
    store: AuditStore, rec: AuditReconciler
) -> None:
    """The original's callers build failure acks as DomainAck(..., error=...)."""
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    failure = DomainAck(run_id=run, domain="orchestrator", action="finalize_run", error="timeout")
    assert failure.status is AckStatus.SUCCESS and not failure.is_success
    assert store.add_ack(run, failure) is AckOutcome.RECORDED
    assert statuses(store, run)[("orchestrator", "finalize_run")] is AuditStatus.FAILED
    for domain, action in (("incidents", "create_incident"), ("policies", "evaluate_policy")):
        store.add_ack(run, create_domain_ack(run, domain, action))
    store.add_ack(run, DomainAck(run, "logs", "start_trace", error=""))  # an empty error too
    result = rec.reconcile(run)
    assert result.status is ReconciliationStatus.INCOMPLETE and not result.is_clean
    assert result.failed_actions == [("logs", "start_trace"), ("orchestrator", "finalize_run")]
    assert verdicts(rec, run) == [(FindingType.INCOMPLETE, "ack")]


# -- a rollback undoes a success; a plain failure after a success does not ---------------
@pytest.mark.parametrize(
    "undo",
    [
        lambda run: create_domain_ack(run, "d", "a", rolled_back=True, rollback_reason="tx"),
        lambda run: DomainAck(run, "d", "a", status=AckStatus.ROLLED_BACK),
        lambda run: DomainAck(run, "d", "a", rolled_back=True),  # status left at SUCCESS
    ],
    ids=["create_domain_ack", "status", "flag"],
)
def test_a_rollback_after_success_fails_the_expectation(
    store: AuditStore, rec: AuditReconciler, undo: Any
) -> None:
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", "a", LONG)])
    store.add_ack(run, create_domain_ack(run, "d", "a"))
    assert rec.reconcile(run).status is ReconciliationStatus.COMPLETE
    assert store.add_ack(run, undo(run)) is AckOutcome.RECORDED
    assert statuses(store, run)[("d", "a")] is AuditStatus.FAILED
    result = rec.reconcile(run)
    assert (result.status, result.failed_actions) == (
        ReconciliationStatus.INCOMPLETE,
        [("d", "a")],
    )
    assert verdicts(rec, run) == [(FindingType.COMPLETE, "ack"), (FindingType.INCOMPLETE, "ack")]
    store.add_ack(run, create_domain_ack(run, "d", "a"))  # redone: a successful retry
    assert rec.reconcile(run).status is ReconciliationStatus.COMPLETE
    assert verdicts(rec, run)[-1] == (FindingType.COMPLETE, "ack")


def test_a_plain_failure_after_a_success_leaves_it_acked(
    store: AuditStore, rec: AuditReconciler
) -> None:
    """Two attempts, one succeeded: the action happened."""
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", "a", LONG)])
    store.add_ack(run, create_domain_ack(run, "d", "a"))
    store.add_ack(run, create_domain_ack(run, "d", "a", error="second attempt failed"))
    assert statuses(store, run)[("d", "a")] is AuditStatus.ACKED
    assert rec.reconcile(run).status is ReconciliationStatus.COMPLETE
    assert len(store.get_acks(run)) == 2
    assert verdicts(rec, run) == [(FindingType.COMPLETE, "ack")]


# -- a run can be judged when it ends ----------------------------------------------------
def test_a_final_verdict_counts_what_is_pending_as_missing_and_writes_nothing(
    store: AuditStore, rec: AuditReconciler, raw_client: Any
) -> None:
    crashed, done = uuid.uuid4(), uuid.uuid4()
    store.add_expectations(crashed, create_run_expectations(crashed))
    store.add_ack(crashed, create_domain_ack(crashed, "incidents", "create_incident"))
    store.add_expectations(done, [AuditExpectation(done, "d", "a", LONG)])
    store.add_ack(done, create_domain_ack(done, "d", "a"))
    before = snapshot(raw_client)
    live = rec.reconcile(crashed, record=False)
    assert live.status is ReconciliationStatus.IN_PROGRESS and not live.is_clean
    assert live.missing_actions == []
    final = rec.reconcile(crashed, final=True)
    assert final.status is ReconciliationStatus.STALE and final.stale_run
    assert final.missing_actions == [
        ("logs", "start_trace"),
        ("orchestrator", "finalize_run"),
        ("policies", "evaluate_policy"),
    ]
    assert final.pending_actions == [] and not final.is_clean
    assert rec.reconcile(done, final=True).is_clean
    with pytest.raises(InvalidInputError, match="end_run"):
        rec.reconcile(crashed, final=True, record=True)
    assert snapshot(raw_client) == before


def test_end_run_marks_the_pending_missing_and_pushes_one_verdict(
    store: AuditStore, rec: AuditReconciler, raw_client: Any
) -> None:
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    store.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
    result = rec.end_run(run)
    assert result.status is ReconciliationStatus.STALE
    assert result.missing_actions == rec.reconcile(run, final=True).missing_actions
    assert len(result.missing_actions) == 3 and result.pending_actions == []
    assert str(run) not in store.get_pending_run_ids()
    assert set(statuses(store, run).values()) == {AuditStatus.ACKED, AuditStatus.MISSING}
    marks = [e for e in rec.iter_findings() if e.type is FindingType.MISSING]
    assert sorted((e.domain, e.action, e.source) for e in marks) == sorted(
        (d, a, "end") for d, a in result.missing_actions
    )
    assert verdicts(rec, run) == [(FindingType.STALE, "end")]
    after = snapshot(raw_client)
    assert _judged(rec.end_run(run)) == _judged(result)  # the same verdict, read again
    store.execute(store.core.end_run(run))  # a re-sent script
    assert snapshot(raw_client) == after  # nothing marked, nothing appended
    late = create_domain_ack(run, "logs", "start_trace")
    assert store.add_ack(run, late) is AckOutcome.LATE
    assert statuses(store, run)[("logs", "start_trace")] is AuditStatus.ACKED


def _judged(result: Any) -> dict[str, Any]:
    """A verdict without the time it was read at."""
    return {k: v for k, v in result.to_dict().items() if k != "reconciled_at"}


def test_end_run_of_a_clean_run_pushes_nothing_new(store: AuditStore, rec: AuditReconciler) -> None:
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", "a", LONG)])
    store.add_ack(run, create_domain_ack(run, "d", "a"))
    assert rec.end_run(run).status is ReconciliationStatus.COMPLETE
    assert verdicts(rec, run) == [(FindingType.COMPLETE, "ack")]


def test_end_run_of_a_large_run_works_in_bounded_calls(
    store: AuditStore, rec: AuditReconciler
) -> None:
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", f"a{i}", LONG) for i in range(2500)])
    result = rec.end_run(run)
    assert result.status is ReconciliationStatus.INCOMPLETE
    assert len(result.missing_actions) == 2500
    (event,) = [e for e in rec.iter_findings() if e.type is FindingType.INCOMPLETE]
    assert event.details["missing"] == "2500" and event.source == "end"
    assert event.details["missing_actions"].count("[") == 1 + 100  # the list is capped


def test_end_run_of_an_unknown_run(
    store: AuditStore, rec: AuditReconciler, raw_client: Any
) -> None:
    before = snapshot(raw_client)
    with pytest.raises(RunNotFoundError):
        rec.end_run(uuid.uuid4())
    with pytest.raises(InvalidInputError):
        rec.end_run("not-a-run")
    assert snapshot(raw_client) == before


# -- factories and results ---------------------------------------------------------------
def test_factories_take_a_run_id_as_text(store: AuditStore, rec: AuditReconciler) -> None:
    run = str(uuid.uuid4())
    store.add_expectations(run, create_run_expectations(run, 60_000))
    outcome = store.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
    assert outcome is AckOutcome.RECORDED
    with pytest.raises(InvalidInputError, match="UUID"):
        create_domain_ack("run-42", "d", "a")
    result = rec.reconcile(run)
    assert result.to_dict()["is_clean"] is False
    exp = store.get_expectations(run)[0]
    assert AuditExpectation.from_dict(exp.to_dict()) == exp
    with pytest.raises(InvalidInputError, match="no field"):
        AuditExpectation.from_dict({**exp.to_dict(), "colour": "red"})


def test_a_clean_runs_dict_says_so(store: AuditStore, rec: AuditReconciler) -> None:
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", "a", 0)])
    time.sleep(0.003)
    store.add_ack(run, create_domain_ack(run, "d", "a"))  # late, but it arrived
    result = rec.reconcile(run)
    assert result.status is ReconciliationStatus.COMPLETE
    assert result.to_dict()["is_clean"] is True and result.late_actions == [("d", "a")]
