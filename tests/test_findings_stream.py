"""The findings stream: which script appends which event, its format, its bound, its readers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rac_store import (
    AuditExpectation,
    AuditStore,
    Finding,
    FindingType,
    InvalidInputError,
    create_domain_ack,
)
from rac_store.embedded import create_embedded_client
from rac_store.reconciler import AuditReconciler
from rac_store.reconciliation import parse_snapshot
from rac_store.scripts import ScriptCall

from .support.snapshot import snapshot

LONG = 600_000


@pytest.fixture
def rec(store: AuditStore) -> AuditReconciler:
    return AuditReconciler(store, metrics=False)


def events(rec: AuditReconciler, kind: FindingType | None = None) -> list[Finding]:
    return [e for e in rec.iter_findings() if kind is None or e.type is kind]


def declare(store: AuditStore, run: uuid.UUID, *pairs: tuple[str, int]) -> None:
    store.add_expectations(run, [AuditExpectation(run, "d", a, ms) for a, ms in pairs])


VERDICT_COUNTS = ("missing", "failed", "drift", "stale", "expectations", "acks")


def counts(event: Finding) -> dict[str, int]:
    """The counts of a verdict event."""
    return {name: int(event.details[name]) for name in VERDICT_COUNTS}


def test_complete_event_when_the_last_pending_is_acked(
    store: AuditStore, rec: AuditReconciler
) -> None:
    run = uuid.uuid4()
    declare(store, run, ("a", LONG), ("b", LONG))
    first = create_domain_ack(run, "d", "a")
    store.add_ack(run, first)
    assert events(rec) == []
    before = store.server_time_ms()
    store.add_ack(run, create_domain_ack(run, "d", "b"))
    store.add_ack(run, first)  # a re-sent ack changes nothing, appends nothing
    store.add_ack(run, create_domain_ack(run, "d", "a"))  # a second ack of an ACKED action
    (event,) = events(rec)
    assert (event.type, event.run_id, event.source) == (FindingType.COMPLETE, str(run), "ack")
    assert before <= event.at_ms <= store.server_time_ms()
    assert event.shard == store.core.keys.shard_of(str(run))
    assert event.stream_id is not None
    assert counts(event) == {
        "missing": 0, "failed": 0, "drift": 0, "stale": 0, "expectations": 2, "acks": 2,
    }  # fmt: skip
    lists = ("missing_actions", "failed_actions", "drift_actions")
    assert [event.details[name] for name in lists] == ["[]", "[]", "[]"]


def test_a_run_that_settles_with_findings_gets_one_event_per_verdict_change(
    store: AuditStore, rec: AuditReconciler
) -> None:
    failed, drift = uuid.uuid4(), uuid.uuid4()
    declare(store, failed, ("a", LONG))
    store.add_ack(failed, create_domain_ack(failed, "d", "a", error="boom"))
    store.add_ack(failed, create_domain_ack(failed, "d", "a", error="boom again"))  # same verdict
    declare(store, drift, ("a", LONG))
    store.add_acks(drift, [create_domain_ack(drift, "x", "y"), create_domain_ack(drift, "d", "a")])
    pushed = {e.run_id: e for e in events(rec)}
    assert {run: e.type for run, e in pushed.items()} == {
        str(failed): FindingType.INCOMPLETE,
        str(drift): FindingType.INCOMPLETE,
    }
    assert pushed[str(failed)].details["failed_actions"] == '[["d","a"]]'
    assert pushed[str(drift)].details["drift_actions"] == '[["x","y"]]'
    assert counts(pushed[str(failed)])["failed"] == 1 and counts(pushed[str(drift)])["drift"] == 1
    # Read on from each shard's last id: across shards, events of one millisecond have no
    # order (stream ids are per stream), and three acks fit in one millisecond here.
    positions = rec.findings_positions()
    store.add_ack(failed, create_domain_ack(failed, "d", "a"))  # the retry clears the failure
    after = rec.iter_findings(since=positions)
    assert [(e.run_id, e.type) for e in after] == [(str(failed), FindingType.COMPLETE)]


def test_acks_before_any_declaration_push_nothing(store: AuditStore, rec: AuditReconciler) -> None:
    """Out of order: a run with no expectation yet is not settled, its drift no alarm."""
    run = uuid.uuid4()
    store.add_acks(run, [create_domain_ack(run, "d", "a"), create_domain_ack(run, "d", "b")])
    assert events(rec) == []


def test_complete_after_a_late_ack_of_a_missing_action(
    store: AuditStore, rec: AuditReconciler
) -> None:
    run = uuid.uuid4()
    declare(store, run, ("a", 0))
    time.sleep(0.003)
    rec.sweep()
    store.add_ack(run, create_domain_ack(run, "d", "a"))
    assert [(e.type, e.source) for e in events(rec)] == [
        (FindingType.MISSING, "sweep"),
        (FindingType.INCOMPLETE, "sweep"),
        (FindingType.COMPLETE, "ack"),
    ]


def test_update_status_appends_missing_and_complete(
    store: AuditStore, rec: AuditReconciler
) -> None:
    run = uuid.uuid4()
    declare(store, run, ("a", LONG), ("b", LONG))
    store.update_expectation_status(run, "d", "a", "MISSING")
    store.update_expectation_status(run, "d", "a", "MISSING")  # same status: nothing
    (missing,) = events(rec)
    assert (missing.type, missing.source, missing.domain, missing.action) == (
        FindingType.MISSING,
        "status",
        "d",
        "a",
    )
    assert missing.due_ms is not None and missing.due_ms > missing.at_ms
    store.update_expectation_status(run, "d", "b", "ACKED")
    assert [(e.type, e.source) for e in events(rec)][1:] == [(FindingType.INCOMPLETE, "status")]
    store.update_expectation_status(run, "d", "a", "ACKED")  # late, but it did arrive
    assert [e.source for e in events(rec, FindingType.COMPLETE)] == ["status"]


def test_declaring_expectations_already_acked_completes_the_run(
    store: AuditStore, rec: AuditReconciler
) -> None:
    run = uuid.uuid4()
    store.add_acks(run, [create_domain_ack(run, "d", "a"), create_domain_ack(run, "d", "b")])
    declare(store, run, ("a", LONG))  # settled: a adopted its ack, d|b is still drift
    declare(store, run, ("b", LONG))
    declare(store, run, ("b", LONG))  # re-declaring changes nothing
    assert [(e.type, e.source) for e in events(rec)] == [
        (FindingType.INCOMPLETE, "declare"),
        (FindingType.COMPLETE, "declare"),
    ]


def test_iter_findings_positions(store: AuditStore, rec: AuditReconciler) -> None:
    runs = [uuid.uuid4() for _ in range(6)]
    for run in runs[:3]:
        declare(store, run, ("a", LONG))
        store.add_ack(run, create_domain_ack(run, "d", "a"))
    old = events(rec)
    assert sorted(e.run_id for e in old) == sorted(map(str, runs[:3]))
    assert list(rec.iter_findings(since="$")) == []  # nothing new yet
    for run in runs[3:]:
        declare(store, run, ("a", LONG))
        store.add_ack(run, create_domain_ack(run, "d", "a"))
    reader_ids = {e.shard: e.stream_id for e in old}  # resume after what was read
    resumed = list(rec.iter_findings(since=reader_ids))
    assert sorted(e.run_id for e in resumed) == sorted(map(str, runs[3:]))
    stops = iter([False, False, True])
    followed = list(rec.iter_findings(follow=True, block_ms=20, should_stop=lambda: next(stops)))
    assert len(followed) == 6
    with pytest.raises(InvalidInputError):
        list(rec.iter_findings(since="latest"))


def test_dollar_means_only_later_events(store: AuditStore, rec: AuditReconciler) -> None:
    run = uuid.uuid4()
    declare(store, run, ("a", LONG), ("b", LONG))
    store.update_expectation_status(run, "d", "a", "MISSING")
    stops = iter([False, True])
    reader = rec.iter_findings(since="$", follow=True, block_ms=20, should_stop=lambda: next(stops))
    assert list(reader) == []
    positions = {e.shard: e.stream_id for e in events(rec)}
    store.update_expectation_status(run, "d", "b", "MISSING")
    later = list(rec.iter_findings(since=positions))
    assert [(e.type, e.action) for e in later] == [
        (FindingType.MISSING, "b"),
        (FindingType.INCOMPLETE, None),  # b was the last PENDING: the run settled
    ]


def test_the_stream_is_bounded(store_factory: Any, raw_client: Any) -> None:
    store = store_factory(findings_maxlen=50, shards=1)
    rec = AuditReconciler(store, metrics=False)
    for _ in range(150):  # two events each: MISSING, then the run's INCOMPLETE verdict
        run = uuid.uuid4()
        declare(store, run, ("a", LONG))
        store.update_expectation_status(run, "d", "a", "MISSING")
    length = raw_client.xlen(store.core.keys.findings(0))
    assert 50 <= length <= 50 + 100  # approximate trimming: whole nodes of 100 entries
    assert len(events(rec)) == length


def test_record_finding_validation(store: AuditStore, raw_client: Any) -> None:
    run = uuid.uuid4()
    declare(store, run, ("a", LONG))  # a verdict is recorded only for a run in the store
    good = store.core.record_finding(run, "STALE", [("missing", "1")])
    cases = [
        [good.args[0], "COMPLETE", *good.args[2:]],  # only STALE and INCOMPLETE are recorded
        ["0", *good.args[1:]],
        [*good.args, "odd"],
        [*good.args[:3], "type", "forged"],
        [*good.args[:3], "", "x"],
    ]
    before = snapshot(raw_client)
    for args in cases:
        with pytest.raises(InvalidInputError):
            store.execute(ScriptCall("record_finding", good.keys, args, "record_finding"))
    with pytest.raises(InvalidInputError):
        store.core.record_finding(run, "COMPLETE", [])
    assert snapshot(raw_client) == before
    assert store.execute(good) != 0
    after = snapshot(raw_client)
    assert after != before
    assert store.execute(good) == 0  # the run's verdict already: nothing appended
    assert snapshot(raw_client) == after


def test_stream_keys_share_the_run_hash_tag(store: AuditStore) -> None:
    run = str(uuid.uuid4())
    keys = store.core.keys.for_run(run)
    tag = keys.pending.split("{")[1].split("}")[0]
    assert keys.findings == f"rac:{{{tag}}}:findings"
    assert all(f"{{{tag}}}" in key for key in keys)
    assert store.core.keys.all_findings()[int(tag)] == keys.findings


# -- the finding counters and verdict events, under random operations -----------------
ACTIONS = ("a", "b", "c", "z")  # z is never declared by the first step; c is a liveness check
operation = st.one_of(
    st.tuples(st.just("declare"), st.sampled_from(ACTIONS), st.sampled_from((0, LONG))),
    st.tuples(st.just("ack"), st.sampled_from(ACTIONS), st.sampled_from(("ok", "error", "undo"))),
    st.tuples(st.just("resend"), st.integers(0, 20), st.just(None)),
    st.tuples(
        st.just("status"), st.sampled_from(ACTIONS), st.sampled_from(("ACKED", "FAILED", "MISSING"))
    ),
    st.tuples(st.just("sweep"), st.just(None), st.just(None)),
)
COUNTER_FIELDS = ("#missing", "#failed", "#drift", "#stale")


def _state(store: AuditStore, run: str) -> tuple[tuple[int, ...], str | None]:
    """Recomputed from the data: the counters as the scripts should keep them, and the
    verdict of the run when it is settled (None while not)."""
    snap = parse_snapshot(run, store.execute(store.core.read_run(run)))
    statuses = {e.key(): e.status.value for e in snap.expectations}
    missing = sum(s == "MISSING" for s in statuses.values())
    stale = statuses.get(("d", "c")) == "MISSING"
    failed = sum(s == "FAILED" for s in statuses.values())
    counters = (missing, failed, len(snap.drift), int(stale))
    if not statuses or "PENDING" in statuses.values():
        return counters, None
    if stale:
        return counters, "STALE"
    return counters, "INCOMPLETE" if missing or failed or snap.drift else "COMPLETE"


def _expectation(run: uuid.UUID, action: str, deadline_ms: int) -> AuditExpectation:
    live = {"is_liveness_check": True} if action == "c" else {}
    return AuditExpectation(run, "d", action, deadline_ms, metadata=live)


def _ack(run: uuid.UUID, action: str, how: str) -> Any:
    if how == "undo":
        return create_domain_ack(run, "d", action, rolled_back=True, rollback_reason="undone")
    return create_domain_ack(run, "d", action, error="boom" if how == "error" else None)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=1, max_size=25))
def test_counters_and_verdict_events_follow_the_data(ops: list[Any]) -> None:
    """Every settled state with a new verdict pushes that verdict once; nothing else does."""
    store = AuditStore(create_embedded_client(), metrics=False)
    rec = AuditReconciler(store, metrics=False)
    run_id = uuid.uuid4()
    run = str(run_id)
    st_key = store.core.keys.for_run(run).st
    sent: list[Any] = []
    pushed: list[str] = []
    for kind, what, arg in ops:
        if kind == "declare":
            store.add_expectations(run, [_expectation(run_id, what, arg)])
        elif kind == "ack":
            sent.append(_ack(run_id, what, arg))
            store.add_ack(run, sent[-1])
        elif kind == "resend" and sent:
            store.add_ack(run, sent[what % len(sent)])
        elif kind == "status":
            try:
                store.update_expectation_status(run, "d", what, arg)
            except Exception as exc:  # a forbidden move changes nothing
                assert type(exc).__name__ == "InvalidTransitionError"
        elif kind == "sweep":
            time.sleep(0.002)
            rec.sweep()
        counters, verdict = _state(store, run)
        stored = store.client.hmget(st_key, *COUNTER_FIELDS)
        assert tuple(int(v or 0) for v in stored) == counters
        if verdict is not None and verdict != (pushed[-1] if pushed else None):
            pushed.append(verdict)
    verdicts = [e.type.value for e in events(rec) if e.type is not FindingType.MISSING]
    assert verdicts == pushed
