"""Every comparison with the server clock, pinned at ``now == due``, one ms before and after.

The rule (docs/state-machine.md, "Due time"): an expectation due at ``t`` is on
time at server time ``t`` and overdue from ``t + 1``. So an ack at ``t`` is not
late and one at ``t + 1`` is; a sweep at ``t`` leaves it PENDING and one at
``t + 1`` marks it MISSING; the reconciler counts it missing from ``t + 1``.
A run's keys get their TTL back when less than ``ttl - ttl/16`` ms is left.

The scripts read the clock themselves; ``tests/support/clock.py`` runs them in
one transaction right after a setup script that puts the due score (or the
TTL) at an exact offset from the millisecond the script will read.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from rac_store import (
    AckOutcome,
    AuditExpectation,
    AuditStatus,
    AuditStore,
    DomainAck,
    FindingType,
    ReconciliationStatus,
    create_domain_ack,
)
from rac_store.core import CommandCall, parse_outcome, parse_server_time
from rac_store.findings import parse_sweep_reply
from rac_store.reconciliation import (
    RunSnapshot,
    deadline_violations,
    parse_snapshot,
    run_steps,
    sweep_steps,
    verdict,
)

from .support.clock import Pinned, pin_due, pin_ttl, until_pinned

BACKENDS = ["embedded", "redis"]
OFFSETS = [-1, 0, 1]
"""Due time minus server time: due one ms before now (overdue), due now, due one ms after."""
LONG = 600_000
KEY = "d|a"


def at_each_offset(test: Any) -> Any:
    """Run ``test`` on both backends with ``offset`` one ms before, at and after the due ms."""
    return pytest.mark.parametrize("backend", BACKENDS)(
        pytest.mark.parametrize("offset", OFFSETS)(test)
    )


def overdue(offset: int) -> bool:
    """The rule every comparison implements: overdue when ``now > due``."""
    return offset < 0


def declare(store: AuditStore) -> uuid.UUID:
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", "a", LONG)])
    return run


def assert_status(
    store: AuditStore, client: Any, run: uuid.UUID, status: str, at_ms: int, late: bool
) -> None:
    """The stored status record of ``d|a``: ``STATUS|acked_at_ms|late|live`` (not live)."""
    record = client.hget(store.core.keys.for_run(str(run)).st, KEY)
    assert record == f"{status}|{at_ms}|{int(late)}|0".encode()


def pinned_at_due(
    store: AuditStore, client: Any, offset: int, make_call: Any
) -> tuple[uuid.UUID, Pinned]:
    """A fresh run with ``d|a`` due at ``now + offset`` when ``make_call(run)`` runs."""

    def attempt() -> tuple[uuid.UUID, Pinned] | None:
        run = declare(store)
        due_key = store.core.keys.for_run(str(run)).due
        pinned = pin_due(client, make_call(run), due_key, KEY, offset)
        return None if pinned is None else (run, pinned)

    return until_pinned(attempt)


@at_each_offset
@pytest.mark.parametrize("ok", [True, False], ids=["ok", "failed"])
def test_an_ack_is_late_only_after_its_due_ms(
    store: AuditStore, raw_client: Any, offset: int, ok: bool
) -> None:
    """``lua/add_acks.lua``: ``late = now > due``."""
    ack_error = None if ok else "boom"
    run, pinned = pinned_at_due(
        store,
        raw_client,
        offset,
        lambda run: store.core.add_ack(run, create_domain_ack(run, "d", "a", error=ack_error)),
    )
    late = overdue(offset)
    assert parse_outcome(pinned.reply) is (AckOutcome.LATE if late else AckOutcome.RECORDED)
    assert_status(store, raw_client, run, "ACKED" if ok else "FAILED", pinned.now_ms, late)


@at_each_offset
def test_the_sweep_marks_only_after_the_due_ms(
    store: AuditStore, raw_client: Any, offset: int
) -> None:
    """``lua/sweep_run.lua``: due members are those scored below ``'(' .. now``."""
    run, pinned = pinned_at_due(store, raw_client, offset, store.core.sweep_run)
    keys = store.core.keys.for_run(str(run))
    findings, score = parse_sweep_reply(str(run), store.core.keys.shard_of(str(run)), pinned.reply)
    due = pinned.now_ms + offset
    assert int(pinned.reply[1]) == pinned.now_ms
    [exp] = store.get_expectations(run)
    if overdue(offset):
        assert [(f.type, f.domain, f.action, f.due_ms) for f in findings] == [
            (FindingType.MISSING, "d", "a", due)
        ]
        assert (exp.status, score) == (AuditStatus.MISSING, -1)
        assert raw_client.zscore(keys.pending, str(run)) is None
    else:
        assert findings == []
        assert (exp.status, score) == (AuditStatus.PENDING, due)
        assert raw_client.zscore(keys.pending, str(run)) == due


@at_each_offset
@pytest.mark.parametrize("target", [AuditStatus.ACKED, AuditStatus.FAILED])
def test_a_manual_status_move_is_late_only_after_the_due_ms(
    store: AuditStore, raw_client: Any, offset: int, target: AuditStatus
) -> None:
    """``lua/update_status.lua``: PENDING -> ACKED/FAILED is late when ``now > due``."""
    run, pinned = pinned_at_due(
        store, raw_client, offset, lambda run: store.core.update_status(run, "d", "a", target)
    )
    assert pinned.reply == 1
    assert_status(store, raw_client, run, target.value, pinned.now_ms, overdue(offset))


@at_each_offset
def test_the_reconciler_counts_missing_only_after_the_due_ms(
    store: AuditStore, raw_client: Any, offset: int
) -> None:
    """``rac_store/reconciliation.py``: ``RunSnapshot.is_overdue`` on a real ``read_run`` reply."""
    run, pinned = pinned_at_due(store, raw_client, offset, store.core.read_run)
    snapshot = parse_snapshot(str(run), pinned.reply)
    assert snapshot.now_ms == pinned.now_ms
    assert snapshot.due_ms == {("d", "a"): pinned.now_ms + offset}
    result = verdict(snapshot)
    if overdue(offset):
        assert (result.status, result.missing_actions) == (
            ReconciliationStatus.INCOMPLETE,
            [("d", "a")],
        )
        assert result.pending_actions == []
        assert [e.key() for e in deadline_violations(snapshot)] == [("d", "a")]
    else:
        assert (result.status, result.pending_actions) == (
            ReconciliationStatus.IN_PROGRESS,
            [("d", "a")],
        )
        assert result.missing_actions == []
        assert deadline_violations(snapshot) == []


@at_each_offset
def test_an_ack_refreshes_ttls_only_below_fifteen_sixteenths(
    store_factory: Any, raw_client: Any, offset: int
) -> None:
    """``lua/add_acks.lua``: refresh when ``PTTL < ttl_ms - ttl_ms/16`` (15,000 of 16,000)."""
    store = store_factory(ttl_seconds=16)
    threshold = 16_000 - 16_000 // 16
    left = threshold + offset

    def attempt() -> tuple[uuid.UUID, Pinned] | None:
        run = declare(store)
        store.add_ack(run, DomainAck(run, "d", "first"))  # the acks list exists
        keys = store.core.keys.for_run(str(run)).run_keys
        call = store.core.add_ack(run, DomainAck(run, "d", "second"))  # d|a stays due
        pinned = pin_ttl(raw_client, call, keys, left)
        return None if pinned is None else (run, pinned)

    run, pinned = until_pinned(attempt)
    assert parse_outcome(pinned.reply) is AckOutcome.DRIFT
    ttls = [raw_client.pttl(key) for key in store.core.keys.for_run(str(run)).run_keys]
    if offset < 0:  # refreshed: every key has (nearly) the whole TTL again
        assert all(left < ttl <= 16_000 for ttl in ttls), ttls
    else:
        assert all(threshold - 1_000 < ttl <= left for ttl in ttls), ttls


# -- the same rule where the server time arrives as a value ---------------------------
def snapshot_at(now_ms: int, due_ms: int, status: AuditStatus) -> RunSnapshot:
    exp = AuditExpectation(uuid.UUID(int=1), "d", "a", 0)
    exp.status = status
    return RunSnapshot(str(uuid.UUID(int=1)), [exp], {("d", "a"): due_ms}, [], 0, now_ms)


@pytest.mark.parametrize("offset", OFFSETS)
def test_is_overdue_at_the_due_ms(offset: int) -> None:
    now = 1_700_000_000_000
    snap = snapshot_at(now, now + offset, AuditStatus.PENDING)
    assert snap.is_overdue(snap.expectations[0]) is overdue(offset)


@pytest.mark.parametrize("status", [AuditStatus.ACKED, AuditStatus.FAILED, AuditStatus.MISSING])
def test_only_pending_expectations_are_overdue(status: AuditStatus) -> None:
    snap = snapshot_at(2_000, 1_000, status)
    assert snap.is_overdue(snap.expectations[0]) is False


@at_each_offset
def test_the_sweep_takes_runs_due_before_its_server_time(
    store: AuditStore, raw_client: Any, offset: int
) -> None:
    """The sweep reads ``TIME``, then each shard's index below ``(now``: the run's score is
    put at ``now + offset`` the moment that ``TIME`` reply arrives."""
    run = declare(store)
    keys = store.core.keys.for_run(str(run))

    def execute(call: Any) -> Any:
        reply = store.execute(call)
        if isinstance(call, CommandCall) and call.commands[0][0] == "TIME":
            due = parse_server_time(reply) + offset
            raw_client.zadd(keys.due, {KEY: due})
            raw_client.zadd(keys.pending, {str(run): due})
        return reply

    report = run_steps(sweep_steps(store.core, 10, 10), execute)
    if overdue(offset):
        assert report.runs_swept == 1
        assert [(f.type, f.run_id, f.due_ms) for f in report.findings] == [
            (FindingType.MISSING, str(run), report.now_ms + offset)
        ]
    else:
        assert (report.runs_swept, report.findings) == (0, [])
        assert store.get_expectations(run)[0].status is AuditStatus.PENDING


@pytest.mark.parametrize(("offset", "more"), [(-1, True), (0, False), (1, False)])
def test_more_due_when_a_run_is_left_scored_before_the_sweeps_time(offset: int, more: bool) -> None:
    """``sweep_steps``: after a run's marks, a score still below the sweep's ``now`` means
    the per-run bound cut its work short."""
    store = AuditStore()
    run = declare(store)
    now = 5_000
    replies = iter(
        [
            [[b"5", b"0"]],  # TIME: 5 s, i.e. now = 5,000 ms
            [[(str(run).encode(), 4_000.0)]] + [[]] * 15,  # the pending read of 16 shards
            [0, now, now + offset],  # sweep_run: nothing marked, left scored now + offset
        ]
    )
    report = run_steps(sweep_steps(store.core, 10, 10), lambda call: next(replies))
    assert (report.now_ms, report.runs_swept, report.more_due) == (now, 1, more)


def test_a_run_that_left_the_index_is_not_more_due() -> None:
    store = AuditStore()
    run = declare(store)
    replies = iter([[[b"5", b"0"]], [[(str(run).encode(), 4_000.0)]] + [[]] * 15, [0, 5_000, -1]])
    report = run_steps(sweep_steps(store.core, 10, 10), lambda call: next(replies))
    assert report.more_due is False


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("offset", "listed"), [(-1, False), (0, True), (1, True)])
def test_due_before_includes_runs_due_exactly_then(
    store: AuditStore, offset: int, listed: bool
) -> None:
    """``get_pending_run_ids(due_before=t)``: runs due at or before ``t`` (a caller's bound)."""
    run = declare(store)
    due = int(store.client.zscore(store.core.keys.for_run(str(run)).pending, str(run)))
    assert store.get_pending_run_ids(due_before=due + offset) == ([str(run)] if listed else [])
