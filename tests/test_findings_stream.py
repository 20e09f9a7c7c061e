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
    assert event.stream_id is not None and event.details == {}


def test_no_complete_event_while_anything_is_wrong(store: AuditStore, rec: AuditReconciler) -> None:
    failed, drift = uuid.uuid4(), uuid.uuid4()
    declare(store, failed, ("a", LONG))
    store.add_ack(failed, create_domain_ack(failed, "d", "a", error="boom"))
    declare(store, drift, ("a", LONG))
    store.add_acks(drift, [create_domain_ack(drift, "x", "y"), create_domain_ack(drift, "d", "a")])
    assert events(rec) == []
    store.add_ack(failed, create_domain_ack(failed, "d", "a"))  # the retry clears the failure
    assert [e.run_id for e in events(rec, FindingType.COMPLETE)] == [str(failed)]


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
    assert events(rec, FindingType.COMPLETE) == []  # a is still MISSING
    store.update_expectation_status(run, "d", "a", "ACKED")
    assert [e.source for e in events(rec, FindingType.COMPLETE)] == ["status"]


def test_declaring_expectations_already_acked_completes_the_run(
    store: AuditStore, rec: AuditReconciler
) -> None:
    run = uuid.uuid4()
    store.add_acks(run, [create_domain_ack(run, "d", "a"), create_domain_ack(run, "d", "b")])
    declare(store, run, ("a", LONG))
    assert events(rec) == []  # d|b is still drift
    declare(store, run, ("b", LONG))
    declare(store, run, ("b", LONG))  # re-declaring changes nothing
    assert [(e.type, e.source) for e in events(rec)] == [(FindingType.COMPLETE, "declare")]


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
    assert [e.action for e in later] == ["b"]


def test_the_stream_is_bounded(store_factory: Any, raw_client: Any) -> None:
    store = store_factory(findings_maxlen=50, shards=1)
    rec = AuditReconciler(store, metrics=False)
    for _ in range(300):
        store.execute(store.core.record_finding(uuid.uuid4(), "INCOMPLETE", [("drift", "1")]))
    length = raw_client.xlen(store.core.keys.findings(0))
    assert 50 <= length <= 50 + 100  # approximate trimming: whole nodes of 100 entries
    assert len(events(rec)) == length


def test_record_finding_validation(store: AuditStore, raw_client: Any) -> None:
    run = uuid.uuid4()
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
    store.execute(good)
    assert snapshot(raw_client) != before


def test_stream_keys_share_the_run_hash_tag(store: AuditStore) -> None:
    run = str(uuid.uuid4())
    keys = store.core.keys.for_run(run)
    tag = keys.pending.split("{")[1].split("}")[0]
    assert keys.findings == f"rac:{{{tag}}}:findings"
    assert all(f"{{{tag}}}" in key for key in keys)
    assert store.core.keys.all_findings()[int(tag)] == keys.findings


# -- the open-issue counter and COMPLETE events, under random operations -------------
ACTIONS = ("a", "b", "c", "z")  # z is never declared by the first step
operation = st.one_of(
    st.tuples(st.just("declare"), st.sampled_from(ACTIONS), st.sampled_from((0, LONG))),
    st.tuples(st.just("ack"), st.sampled_from(ACTIONS), st.booleans()),
    st.tuples(st.just("resend"), st.integers(0, 20), st.just(None)),
    st.tuples(
        st.just("status"), st.sampled_from(ACTIONS), st.sampled_from(("ACKED", "FAILED", "MISSING"))
    ),
    st.tuples(st.just("sweep"), st.just(None), st.just(None)),
)


def _is_clean(store: AuditStore, run: str) -> tuple[bool, int]:
    """Recomputed from the data: (clean, open issues) as the Lua counter should say."""
    snap = parse_snapshot(run, store.execute(store.core.read_run(run)))
    statuses = [e.status.value for e in snap.expectations]
    issues = sum(s in ("FAILED", "MISSING") for s in statuses) + len(snap.drift)
    clean = bool(statuses) and issues == 0 and "PENDING" not in statuses
    return clean, issues


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=1, max_size=25))
def test_counter_and_complete_events_follow_the_data(ops: list[Any]) -> None:
    store = AuditStore(create_embedded_client(), metrics=False)
    rec = AuditReconciler(store, metrics=False)
    run_id = uuid.uuid4()
    run = str(run_id)
    st_key = store.core.keys.for_run(run)[2]
    sent: list[Any] = []
    transitions, was_clean = 0, False
    for kind, what, arg in ops:
        if kind == "declare":
            store.add_expectations(run, [AuditExpectation(run_id, "d", what, arg)])
        elif kind == "ack":
            sent.append(create_domain_ack(run_id, "d", what, error=None if arg else "boom"))
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
        clean, issues = _is_clean(store, run)
        assert int(store.client.hget(st_key, "#issues") or 0) == issues
        transitions += clean and not was_clean
        was_clean = clean
    assert len(events(rec, FindingType.COMPLETE)) == transitions
