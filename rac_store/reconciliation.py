"""The reconciler's logic, sans-I/O: snapshots, verdicts, and the steps of each operation.

Each operation is a generator of *steps*: it yields the calls it needs (built
by :class:`~rac_store.core.StoreCore`) and receives their replies, then
returns its result. :func:`run_steps` drives one with a sync store's
``execute``, :func:`run_steps_async` with an async store's, so the sync and the
asyncio reconciler (:mod:`rac_store.reconciler`, :mod:`rac_store.aio.reconciler`)
share every line of logic.

Definitions (docs/reconciler.md):

- *missing*: an expectation MISSING, or PENDING with its due time passed
  (``server time > due``; a PENDING expectation not yet due is *pending*, not
  missing)
- *failed*: an expectation FAILED (a FAILED one retried successfully is ACKED)
- *drift*: an acked (domain, action) that no expectation declares
- *stale*: a liveness expectation (``metadata["is_liveness_check"]``, the
  ``finalize_run`` of :func:`~rac_store.models.create_run_expectations`) is missing

Verdict precedence: STALE > INCOMPLETE (any missing, failed or drift) >
IN_PROGRESS (nothing found, something pending) > COMPLETE.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .core import (
    DEFAULT_SWEEP_MARKS,
    Call,
    StoreCore,
    is_liveness,
    ms_to_datetime,
    parse_expectations,
    parse_pending,
    parse_server_time,
    positive_int,
    sweep_marks,
    text,
)
from .errors import InvalidInputError, RunNotFoundError
from .findings import parse_sweep_reply, parse_tail, verdict_fields
from .models import (
    ActionKey,
    AuditExpectation,
    AuditStatus,
    PendingReport,
    PendingRun,
    ReconciliationResult,
    ReconciliationStatus,
    SweepReport,
)
from .validation import KEY_SEPARATOR, canonical_run_id

T = TypeVar("T")
Steps = Generator[Call, Any, T]
"""An operation: yields calls, receives their replies, returns its result."""


@dataclass(frozen=True)
class RunSnapshot:
    """One consistent read of a run, with the server's time."""

    run_id: str
    expectations: list[AuditExpectation]
    due_ms: dict[ActionKey, int]
    """Due time of every PENDING expectation."""
    drift: list[ActionKey]
    """Acked keys that no expectation declares."""
    acks_count: int
    now_ms: int

    @property
    def exists(self) -> bool:
        """True when the store holds any data of the run."""
        return bool(self.expectations or self.drift or self.acks_count)

    def is_overdue(self, exp: AuditExpectation) -> bool:
        """True for a PENDING expectation whose due time has passed."""
        due = self.due_ms.get(exp.key())
        return exp.status is AuditStatus.PENDING and due is not None and self.now_ms > due


def _split(key: Any) -> ActionKey:
    domain, _, action = text(key).partition(KEY_SEPARATOR)
    return (domain, action)


def parse_snapshot(run_id: str, reply: Sequence[Any]) -> RunSnapshot:
    """A snapshot from a ``read_run`` reply."""
    stored, statuses, due, acks_count, now = reply
    expectations = parse_expectations([stored, statuses])
    declared = {text(field) for field in stored[::2]}
    drift = sorted(
        _split(field)
        for field in map(text, statuses[::2])
        if KEY_SEPARATOR in field and field not in declared
    )
    due_ms = {
        _split(key): int(float(score)) for key, score in zip(due[::2], due[1::2], strict=True)
    }
    return RunSnapshot(run_id, expectations, due_ms, drift, int(acks_count), int(now))


def verdict(snapshot: RunSnapshot, final: bool = False) -> ReconciliationResult:
    """The findings of one run (pure: the same snapshot always gives the same result).

    ``final``: the run is over, so every PENDING expectation counts as missing now,
    whatever its due time (a PENDING liveness check makes the run STALE).
    """
    missing: list[ActionKey] = []
    failed: list[ActionKey] = []
    pending: list[ActionKey] = []
    late: list[ActionKey] = []
    stale = False
    for exp in snapshot.expectations:
        key = exp.key()
        if exp.status is AuditStatus.FAILED:
            failed.append(key)
        elif (
            exp.status is AuditStatus.MISSING
            or snapshot.is_overdue(exp)
            or (final and exp.status is AuditStatus.PENDING)
        ):
            missing.append(key)
            stale = stale or is_liveness(exp)
        elif exp.status is AuditStatus.PENDING:
            pending.append(key)
        if exp.late and exp.status in (AuditStatus.ACKED, AuditStatus.FAILED):
            late.append(key)
    if stale:
        status = ReconciliationStatus.STALE
    elif missing or failed or snapshot.drift:
        status = ReconciliationStatus.INCOMPLETE
    elif pending:
        status = ReconciliationStatus.IN_PROGRESS
    else:
        status = ReconciliationStatus.COMPLETE
    return ReconciliationResult(
        run_id=uuid.UUID(snapshot.run_id),
        status=status,
        missing_actions=sorted(missing),
        drift_actions=list(snapshot.drift),
        failed_actions=sorted(failed),
        stale_run=stale,
        expectations_count=len(snapshot.expectations),
        acks_count=snapshot.acks_count,
        reconciled_at=ms_to_datetime(snapshot.now_ms),
        pending_actions=sorted(pending),
        late_actions=sorted(late),
    )


def deadline_violations(snapshot: RunSnapshot) -> list[AuditExpectation]:
    """Expectations that missed their deadline: MISSING, PENDING past due, or acked late."""
    return [
        exp
        for exp in snapshot.expectations
        if exp.status is AuditStatus.MISSING or snapshot.is_overdue(exp) or exp.late
    ]


def summary(snapshot: RunSnapshot, result: ReconciliationResult) -> dict[str, Any]:
    """A JSON-ready summary of one run: counts by status, due times, the verdict."""
    by_status = {status.value: 0 for status in AuditStatus}
    for exp in snapshot.expectations:
        by_status[exp.status.value] += 1
    due = sorted(snapshot.due_ms.values())
    return {
        "run_id": snapshot.run_id,
        "status": result.status.value,
        "expectations": len(snapshot.expectations),
        "acks": snapshot.acks_count,
        "by_status": by_status,
        "late": len(result.late_actions),
        "next_due_ms": due[0] if due else None,
        "server_time_ms": snapshot.now_ms,
        "result": result.to_dict(),
    }


# -- steps ----------------------------------------------------------------------------
def snapshot_steps(core: StoreCore, run_id: uuid.UUID | str) -> Steps[RunSnapshot]:
    """Read one run; RunNotFoundError when the store holds nothing of it."""
    run = canonical_run_id(run_id)
    snapshot = parse_snapshot(run, (yield core.read_run(run)))
    if not snapshot.exists:
        raise RunNotFoundError(f"run {run} is not in the store (never written, cleared or expired)")
    return snapshot


def reconcile_steps(
    core: StoreCore, run_id: uuid.UUID | str, record: bool, final: bool = False
) -> Steps[ReconciliationResult]:
    """Reconcile one run; a STALE or INCOMPLETE verdict is recorded in the stream if ``record``
    (``record_finding`` appends it only when it is not the run's last verdict already)."""
    if record and final:
        raise InvalidInputError(
            "a final=True verdict is not recorded: end_run(run_id) ends the run and pushes it"
        )
    snapshot = yield from snapshot_steps(core, run_id)
    result = verdict(snapshot, final)
    if record and result.status in (ReconciliationStatus.STALE, ReconciliationStatus.INCOMPLETE):
        yield core.record_finding(snapshot.run_id, result.status.value, verdict_fields(result))
    return result


END_EXPIRED, END_UNKNOWN = 1, 2
"""States of an ``end_run`` reply besides 0 (ended)."""


def end_run_steps(
    core: StoreCore, run_id: uuid.UUID | str, marks_per_call: int = DEFAULT_SWEEP_MARKS
) -> Steps[ReconciliationResult]:
    """End one run: mark what is PENDING MISSING (a bounded batch per call, until none is
    left; the last call pushes the verdict), then return its verdict."""
    run = canonical_run_id(run_id)
    while True:
        state, _now, left = (int(v) for v in (yield core.end_run(run, marks_per_call)))
        if state == END_UNKNOWN:
            raise RunNotFoundError(f"run {run} is not in the store (never written or cleared)")
        if state == END_EXPIRED:
            raise RunNotFoundError(f"run {run} had expired; it is reported as EXPIRED")
        if left == 0:
            break
    return verdict((yield from snapshot_steps(core, run)))


def violations_steps(core: StoreCore, run_id: uuid.UUID | str) -> Steps[list[AuditExpectation]]:
    """The run's deadline violations (see :func:`deadline_violations`)."""
    return deadline_violations((yield from snapshot_steps(core, run_id)))


def summary_steps(core: StoreCore, run_id: uuid.UUID | str) -> Steps[dict[str, Any]]:
    """The run's summary (see :func:`summary`); nothing is recorded."""
    snapshot = yield from snapshot_steps(core, run_id)
    return summary(snapshot, verdict(snapshot))


def positions_steps(core: StoreCore) -> Steps[dict[int, str]]:
    """The last id of every shard's findings stream."""
    return parse_tail((yield core.findings_tail()))


def pending_steps(core: StoreCore, due_only: bool, limit: int) -> Steps[PendingReport]:
    """Runs of every shard's pending index, earliest due first (only overdue ones if asked)."""
    limit = positive_int(limit, "limit")
    now = parse_server_time((yield core.server_time("pending")))
    replies = yield core.pending_runs(now if due_only else None, limit + 1, "pending")
    runs = [
        PendingRun(run, due, core.keys.shard_of(run))
        for run, due in parse_pending(replies, limit + 1)
    ]
    return PendingReport(now_ms=now, runs=runs[:limit], more=len(runs) > limit)


def sweep_steps(core: StoreCore, limit: int, marks_per_run: int) -> Steps[SweepReport]:
    """One bounded sweep: at most ``limit`` due runs, ``marks_per_run`` marks each."""
    marks_per_run = sweep_marks(marks_per_run)
    due = yield from pending_steps(core, True, limit)
    more_due = due.more
    findings = []
    for run in due.runs:
        found, score = parse_sweep_reply(
            run.run_id, run.shard, (yield core.sweep_run(run.run_id, marks_per_run))
        )
        findings += found
        more_due = more_due or 0 <= score < due.now_ms
    return SweepReport(
        now_ms=due.now_ms, runs_swept=len(due.runs), findings=findings, more_due=more_due
    )


# -- drivers --------------------------------------------------------------------------
def run_steps(steps: Steps[T], execute: Callable[[Call], Any]) -> T:
    """Drive ``steps`` with a blocking ``execute``."""
    try:
        call = next(steps)
        while True:
            call = steps.send(execute(call))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def run_steps_async(steps: Steps[T], execute: Callable[[Call], Awaitable[Any]]) -> T:
    """Drive ``steps`` with an awaitable ``execute``."""
    try:
        call = next(steps)
        while True:
            call = steps.send(await execute(call))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
