"""Contract: expectations and acks, and the state machine they drive (every backend)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from rac_store import (
    AckOutcome,
    AckStatus,
    AuditExpectation,
    AuditStatus,
    AuditStore,
    DomainAck,
    create_domain_ack,
    create_run_expectations,
)


def new_run() -> uuid.UUID:
    return uuid.uuid4()


def status_of(store: AuditStore, run: uuid.UUID, domain: str, action: str) -> AuditExpectation:
    return next(e for e in store.get_expectations(run) if e.key() == (domain, action))


def test_add_expectations_counts_new_and_ignores_repeats(store: AuditStore) -> None:
    run = new_run()
    exps = create_run_expectations(run)
    assert store.add_expectations(run, exps) == 4
    assert store.add_expectations(run, exps) == 0
    extra = AuditExpectation(run, "billing", "charge", 1000)
    assert store.add_expectations(run, [*exps, extra]) == 1
    assert len(store.get_expectations(run)) == 5


def test_re_adding_keeps_the_first_declaration(store: AuditStore) -> None:
    run = new_run()
    first = AuditExpectation(run, "billing", "charge", 1000, metadata={"v": 1})
    second = AuditExpectation(run, "billing", "charge", 9000, metadata={"v": 2})
    store.add_expectations(run, [first])
    store.add_expectations(run, [second])
    (stored,) = store.get_expectations(run)
    assert stored.id == first.id
    assert stored.deadline_ms == 1000
    assert stored.metadata == {"v": 1}


def test_expectation_round_trips(store: AuditStore) -> None:
    run = new_run()
    exps = create_run_expectations(run, run_timeout_ms=1234, grace_period_ms=66)
    store.add_expectations(run, exps)
    stored = {e.key(): e for e in store.get_expectations(run)}
    for exp in exps:
        got = stored[exp.key()]
        assert (got.id, got.run_id, got.deadline_ms, got.created_at) == (
            exp.id,
            exp.run_id,
            exp.deadline_ms,
            exp.created_at,
        )
        assert got.metadata == exp.metadata
        assert got.status is AuditStatus.PENDING
        assert got.acked_at is None and got.late is False
    assert stored[("orchestrator", "finalize_run")].deadline_ms == 1300
    assert stored[("orchestrator", "finalize_run")].metadata == {"is_liveness_check": True}


def test_ack_outcomes_recorded_duplicate_drift(store: AuditStore) -> None:
    run = new_run()
    store.add_expectations(run, create_run_expectations(run))
    ack = create_domain_ack(run, "incidents", "create_incident", result_id="inc-1")
    drift = create_domain_ack(run, "logs", "complete_trace")
    before = store.server_time_ms()
    assert store.add_ack(run, ack) is AckOutcome.RECORDED
    after = store.server_time_ms()
    assert store.add_ack(run, ack) is AckOutcome.DUPLICATE
    assert store.add_ack(run, drift) is AckOutcome.DRIFT
    exp = status_of(store, run, "incidents", "create_incident")
    assert exp.status is AuditStatus.ACKED and not exp.late
    assert exp.acked_at is not None and before <= exp.acked_at.timestamp() * 1000 <= after
    assert store.get_acks(run) == [ack, drift]  # the duplicate is not stored again


def test_acks_keep_arrival_order_and_exact_content(store: AuditStore) -> None:
    run = new_run()
    sent = [
        DomainAck(run, "d", f"a{i}", status=AckStatus.FAILED, error="e" * i, metadata={"i": i})
        for i in range(20)
    ]
    for ack in sent:
        store.add_ack(run, ack)
    assert store.get_acks(run) == sent


def test_failed_ack_then_successful_retry(store: AuditStore) -> None:
    run = new_run()
    store.add_expectations(run, create_run_expectations(run))
    failed = create_domain_ack(run, "policies", "evaluate_policy", error="timeout")
    assert failed.status is AckStatus.FAILED
    assert store.add_ack(run, failed) is AckOutcome.RECORDED
    assert status_of(store, run, "policies", "evaluate_policy").status is AuditStatus.FAILED
    again = create_domain_ack(run, "policies", "evaluate_policy", error="timeout again")
    assert store.add_ack(run, again) is AckOutcome.RECORDED
    assert status_of(store, run, "policies", "evaluate_policy").status is AuditStatus.FAILED
    retry = create_domain_ack(run, "policies", "evaluate_policy")
    assert store.add_ack(run, retry) is AckOutcome.RECORDED
    assert status_of(store, run, "policies", "evaluate_policy").status is AuditStatus.ACKED
    assert len(store.get_acks(run)) == 3


def test_failure_after_success_keeps_acked(store: AuditStore) -> None:
    run = new_run()
    store.add_expectations(run, create_run_expectations(run))
    store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
    store.add_ack(run, create_domain_ack(run, "logs", "start_trace", error="later failure"))
    assert status_of(store, run, "logs", "start_trace").status is AuditStatus.ACKED


def test_rolled_back_ack_fails_the_expectation(store: AuditStore) -> None:
    run = new_run()
    store.add_expectations(run, create_run_expectations(run))
    ack = create_domain_ack(
        run, "incidents", "create_incident", rolled_back=True, rollback_reason="x"
    )
    assert ack.is_rolled_back and not ack.is_success
    store.add_ack(run, ack)
    assert status_of(store, run, "incidents", "create_incident").status is AuditStatus.FAILED


def test_ack_after_deadline_is_late(store: AuditStore) -> None:
    run = new_run()
    store.add_expectations(run, [AuditExpectation(run, "d", "a", deadline_ms=0)])
    time.sleep(0.01)
    assert store.add_ack(run, create_domain_ack(run, "d", "a")) is AckOutcome.LATE
    exp = status_of(store, run, "d", "a")
    assert exp.status is AuditStatus.ACKED and exp.late


def test_missing_then_late_ack(store: AuditStore) -> None:
    run = new_run()
    store.add_expectations(run, create_run_expectations(run))
    assert store.update_expectation_status(run, "logs", "start_trace", AuditStatus.MISSING)
    assert (
        store.add_ack(run, create_domain_ack(run, "logs", "start_trace", error="x"))
        is AckOutcome.LATE
    )
    exp = status_of(store, run, "logs", "start_trace")
    assert exp.status is AuditStatus.FAILED and exp.late
    assert store.add_ack(run, create_domain_ack(run, "logs", "start_trace")) is AckOutcome.RECORDED
    exp = status_of(store, run, "logs", "start_trace")
    assert exp.status is AuditStatus.ACKED and exp.late


def test_ack_before_expectation_is_drift_then_counts(store: AuditStore) -> None:
    run = new_run()
    early = create_domain_ack(run, "incidents", "create_incident")
    assert store.add_ack(run, early) is AckOutcome.DRIFT
    assert store.add_expectations(run, create_run_expectations(run)) == 4
    exp = status_of(store, run, "incidents", "create_incident")
    assert exp.status is AuditStatus.ACKED
    assert str(run) in store.get_pending_run_ids()  # three others are still pending


def test_add_acks_batch_outcomes_in_order(store: AuditStore) -> None:
    run = new_run()
    store.add_expectations(run, create_run_expectations(run))
    a = create_domain_ack(run, "incidents", "create_incident")
    b = create_domain_ack(run, "nobody", "expected")
    c = create_domain_ack(run, "logs", "start_trace")
    outcomes = store.add_acks(run, [a, b, a, c])
    assert outcomes == [
        AckOutcome.RECORDED,
        AckOutcome.DRIFT,
        AckOutcome.DUPLICATE,
        AckOutcome.RECORDED,
    ]
    assert store.get_acks(run) == [a, b, c]
    assert store.add_acks(run, []) == []


def test_two_stores_share_one_truth(store_factory: Callable[..., AuditStore]) -> None:
    first, second = store_factory(), store_factory()
    run = new_run()
    first.add_expectations(run, create_run_expectations(run))
    second.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
    first.add_ack(run, create_domain_ack(run, "policies", "evaluate_policy"))
    assert len(second.get_acks(run)) == 2
    statuses = {e.key(): e.status for e in second.get_expectations(run)}
    assert statuses[("policies", "evaluate_policy")] is AuditStatus.ACKED


def test_load_from_redis_and_clear(store: AuditStore) -> None:
    run = new_run()
    assert store.load_from_redis(run) is False
    store.add_ack(run, create_domain_ack(run, "d", "a"))
    assert store.load_from_redis(run) is True
    assert store.clear_run(run) is True
    assert store.load_from_redis(run) is False
    assert store.get_acks(run) == [] and store.get_expectations(run) == []
    assert store.clear_run(run) is False


@pytest.mark.parametrize("run_form", [str, lambda u: u, lambda u: str(u).upper()])
def test_run_id_forms_address_one_run(
    store: AuditStore, run_form: Callable[[uuid.UUID], object]
) -> None:
    run = new_run()
    store.add_expectations(run, create_run_expectations(run))
    form = run_form(run)
    assert len(store.get_expectations(form)) == 4
