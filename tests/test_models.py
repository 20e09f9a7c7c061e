"""Models: seed-compatible names and defaults, helpers, wire format."""

from __future__ import annotations

import json
import uuid

from rac_store import (
    AckStatus,
    AuditAction,
    AuditDomain,
    AuditExpectation,
    AuditStatus,
    DomainAck,
    ReconciliationResult,
    ReconciliationStatus,
    codec,
    create_domain_ack,
    create_run_expectations,
)


def test_expectation_defaults() -> None:
    run = uuid.uuid4()
    exp = AuditExpectation(run, AuditDomain.LOGS, AuditAction.START_TRACE)
    assert exp.deadline_ms == 5000 and exp.status is AuditStatus.PENDING
    assert exp.acked_at is None and exp.metadata == {} and exp.late is False
    assert exp.created_at.tzinfo is not None
    assert exp.key() == ("logs", "start_trace")
    assert AuditExpectation(run, "logs", "start_trace").id != exp.id


def test_ack_status_follows_error_and_rollback() -> None:
    run = uuid.uuid4()
    ok = create_domain_ack(run, "d", "a", result_id="r")
    assert ok.status is AckStatus.SUCCESS and ok.is_success and not ok.is_rolled_back
    failed = create_domain_ack(run, "d", "a", error="e")
    assert failed.status is AckStatus.FAILED and not failed.is_success
    rolled = create_domain_ack(run, "d", "a", rolled_back=True, rollback_reason="why")
    assert rolled.status is AckStatus.ROLLED_BACK and rolled.is_rolled_back
    assert not rolled.is_success
    assert not DomainAck(run, "d", "a", rolled_back=True).is_success


def test_standard_expectations() -> None:
    run = uuid.uuid4()
    exps = create_run_expectations(run, run_timeout_ms=1000, grace_period_ms=10)
    assert [e.key() for e in exps] == [
        ("incidents", "create_incident"),
        ("policies", "evaluate_policy"),
        ("logs", "start_trace"),
        ("orchestrator", "finalize_run"),
    ]
    assert [e.deadline_ms for e in exps] == [1000, 1000, 1000, 1010]
    assert exps[-1].metadata == {"is_liveness_check": True}
    assert all(e.run_id == run for e in exps)


def test_wire_round_trip_and_enum_domains() -> None:
    run = uuid.uuid4()
    exp = AuditExpectation(run, AuditDomain.INCIDENTS, "custom action", metadata={"k": [1, "ü"]})
    back = codec.decode_expectation(codec.encode(exp))
    assert back.domain == "incidents" == AuditDomain.INCIDENTS
    assert (back.id, back.created_at, back.metadata) == (exp.id, exp.created_at, exp.metadata)
    ack = create_domain_ack(run, "d", "a", error="e")
    assert codec.decode_ack(codec.encode(ack)) == ack
    assert len(codec.encode(ack)) < 100  # UUIDs as 16 bytes, array-like


def test_to_dict_is_json_ready() -> None:
    run = uuid.uuid4()
    data = create_domain_ack(run, "d", "a").to_dict()
    assert data["run_id"] == str(run) and data["status"] == "SUCCESS"
    json.dumps(data)
    result = ReconciliationResult(
        run_id=run, status=ReconciliationStatus.INCOMPLETE, missing_actions=[("d", "a")]
    )
    assert result.has_missing and not result.has_drift and not result.is_clean
    assert json.loads(json.dumps(result.to_dict()))["missing_actions"] == [["d", "a"]]
    assert ReconciliationResult(run_id=run, status=ReconciliationStatus.COMPLETE).is_clean
