"""AuditReconciler: findings of runs, the deadline sweep and the findings stream (sync).

The logic lives in :mod:`rac_store.reconciliation` (sans-I/O steps); this class
only drives the steps with a store's ``execute``.
:class:`~rac_store.aio.reconciler.AsyncAuditReconciler` is its asyncio twin.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

from . import reconciliation as rc
from .cluster import is_cluster
from .consumer import FindingsConsumer
from .core import DEFAULT_SWEEP_MARKS, Call, StoreCore
from .errors import ReadOnlyStoreError
from .findings import FindingsCursor, ReadPlan, Since
from .findings_groups import GroupCursor
from .metrics import Metrics, MetricsOption, resolve_metrics
from .models import AuditExpectation, Finding, PendingReport, ReconciliationResult, SweepReport
from .store import AuditStore, get_audit_store


class ReconcilerStore(Protocol):
    """What a reconciler needs of a store: its sans-I/O core and ``execute``."""

    @property
    def core(self) -> StoreCore:
        """Key space, TTL and call builders."""

    def execute(self, call: Call) -> Any:
        """Send one call; the raw reply."""


class ReconcilerBase:
    """State and metrics shared by the sync and the asyncio reconciler."""

    def __init__(self, store: Any, metrics: MetricsOption) -> None:
        self._store = store
        self._metrics: Metrics | None = resolve_metrics(metrics)

    @property
    def _core(self) -> StoreCore:
        """The store's sans-I/O core (a read-only store adopts its layout when it opens)."""
        core: StoreCore = self._store.core
        return core

    @property
    def store(self) -> Any:
        """The store this reconciler reads and sweeps."""
        return self._store

    def iter_findings(
        self,
        *,
        since: Since = "0",
        follow: bool = False,
        count: int = 500,
        block_ms: int = 1000,
        should_stop: Callable[[], bool] | None = None,
    ) -> FindingsFeed:
        """Events of every shard's findings stream, oldest first (``for``, or ``async for``
        with an asyncio store).

        ``since``: "0" (all the streams still hold), "$" (only events after the
        iteration starts) or an id per shard (see :meth:`findings_positions`).
        Without ``follow`` the iteration ends when it has caught up; with it, it
        waits (``XREAD BLOCK block_ms``) for more until ``should_stop()`` returns
        True, checked at least every ``block_ms``.
        """
        per_shard = is_cluster(getattr(self._store, "client", None))
        plan = ReadPlan(count, follow, block_ms)
        cursor = FindingsCursor(self._core, since, per_shard, plan)
        return FindingsFeed(self._store.execute, cursor, should_stop or _never)

    def _check_writable(self, operation: str) -> None:
        """ReadOnlyStoreError up front for an operation that writes, on a read-only store."""
        if getattr(self._store, "read_only", False):
            raise ReadOnlyStoreError(f"{operation}: the store was opened read-only")

    def _reconcile_steps(
        self, run_id: uuid.UUID | str, record: bool | None, final: bool
    ) -> rc.Steps[ReconciliationResult]:
        if record is None:
            record = not final
        if record:
            self._check_writable("reconcile (record=True)")
        return rc.reconcile_steps(self._core, run_id, record, final)

    def _end_run_steps(self, run_id: uuid.UUID | str) -> rc.Steps[ReconciliationResult]:
        self._check_writable("end_run")
        return rc.end_run_steps(self._core, run_id)

    def _sweep_steps(self, limit: int, marks_per_run: int) -> rc.Steps[SweepReport]:
        self._check_writable("sweep")
        return rc.sweep_steps(self._core, limit, marks_per_run)

    def _group_cursor(self, group: str, name: str) -> GroupCursor:
        """The sans-I/O state of consumer ``name`` of ``group`` on this store."""
        per_shard = is_cluster(getattr(self._store, "client", None))
        return GroupCursor(self._core, group, name, per_shard)

    def _observed(self, result: ReconciliationResult, started: float) -> ReconciliationResult:
        if self._metrics is not None:
            self._metrics.observe_reconciliation(result, time.perf_counter() - started)
        return result


class AuditReconciler(ReconcilerBase):
    """Turns a store's expectations and acks into findings (see docs/reconciler.md)."""

    def __init__(
        self, store: AuditStore | ReconcilerStore | None = None, *, metrics: MetricsOption = None
    ) -> None:
        super().__init__(store if store is not None else get_audit_store(), metrics)

    def _run(self, steps: rc.Steps[rc.T]) -> rc.T:
        return rc.run_steps(steps, self._store.execute)

    def reconcile(
        self, run_id: uuid.UUID | str, *, final: bool = False, record: bool | None = None
    ) -> ReconciliationResult:
        """The run's verdict and findings (RunNotFoundError for an unknown run).

        ``final=False``: the run may still be going; an overdue PENDING expectation
        counts as missing, one not yet due as pending (IN_PROGRESS). ``final=True``:
        the run is over, every PENDING expectation counts as missing now (a PENDING
        liveness check makes the run STALE); nothing is written.
        ``record`` (default: ``not final``) appends a STALE or INCOMPLETE verdict to the
        findings stream unless it is the run's last pushed verdict already; a final
        verdict is never recorded (InvalidInputError): :meth:`end_run` ends a run and
        pushes its verdict. Nothing else is written: only the sweep and end_run mark
        expectations MISSING.
        """
        started = time.perf_counter()
        steps = self._reconcile_steps(run_id, record, final)
        return self._observed(self._run(steps), started)

    def end_run(self, run_id: uuid.UUID | str) -> ReconciliationResult:
        """The run is over: mark what is still PENDING MISSING, push its verdict, return it.

        One script call (per 1,000 PENDING expectations) marks them, takes the run
        out of the pending index and appends the run's verdict event (COMPLETE,
        INCOMPLETE or STALE) when it changed. A second call changes nothing and
        appends nothing. Acks that arrive later are LATE, as after a sweep.
        """
        started = time.perf_counter()
        return self._observed(self._run(self._end_run_steps(run_id)), started)

    def snapshot(self, run_id: uuid.UUID | str) -> rc.RunSnapshot:
        """One consistent read of the run (expectations, due times, drift, server time)."""
        return self._run(rc.snapshot_steps(self._core, run_id))

    def pending(self, *, due_only: bool = False, limit: int = 100) -> PendingReport:
        """Runs in the pending indexes, earliest due first; only overdue ones with ``due_only``."""
        return self._run(rc.pending_steps(self._core, due_only, limit))

    def check_deadline_violations(self, run_id: uuid.UUID | str) -> list[AuditExpectation]:
        """Expectations that missed their deadline: MISSING, PENDING past due, or acked late."""
        return self._run(rc.violations_steps(self._core, run_id))

    def get_run_audit_summary(self, run_id: uuid.UUID | str) -> dict[str, Any]:
        """Counts by status, next due time and the verdict of one run (nothing recorded)."""
        return self._run(rc.summary_steps(self._core, run_id))

    def sweep(self, *, limit: int = 1000, marks_per_run: int = DEFAULT_SWEEP_MARKS) -> SweepReport:
        """Mark overdue expectations MISSING in at most ``limit`` due runs (one script each).

        Runs are taken earliest-due first from every shard's pending index, by
        server time; runs whose keys expired leave the index as EXPIRED findings.
        ``more_due`` in the report says whether another call has work left.
        """
        return self._run(self._sweep_steps(limit, marks_per_run))

    def findings_positions(self) -> dict[int, str]:
        """The last stream id of every shard: pass it as ``since`` to read what comes after."""
        return self._run(rc.positions_steps(self._core))

    def consumer(self, group: str, name: str) -> FindingsConsumer:
        """Consumer ``name`` of consumer group ``group`` over every shard's findings stream.

        At-least-once delivery shared by the group's consumers, reclaimable pending
        events, and GAP records for events the bounded streams lost before the group
        read them (see :class:`~rac_store.consumer.FindingsConsumer`, docs/integrations.md).
        """
        return FindingsConsumer(self._store.execute, self._group_cursor(group, name))


def _never() -> bool:
    return False


class FindingsFeed:
    """The events an :meth:`~ReconcilerBase.iter_findings` call reads, as they come.

    Iterate with ``for`` when the store is sync, ``async for`` when it is asyncio;
    the reading itself is the sans-I/O :class:`~rac_store.findings.FindingsCursor`.
    """

    def __init__(
        self,
        execute: Callable[[Call], Any],
        cursor: FindingsCursor,
        should_stop: Callable[[], bool],
    ) -> None:
        self._execute = execute
        self._cursor = cursor
        self._should_stop = should_stop

    def __iter__(self) -> Iterator[Finding]:
        cursor = self._cursor
        while not cursor.done and not self._should_stop():
            batch = cursor.feed(self._execute(cursor.next_call()))
            yield from batch
            time.sleep(cursor.pause_after(batch))

    async def __aiter__(self) -> AsyncIterator[Finding]:
        cursor = self._cursor
        while not cursor.done and not self._should_stop():
            batch = cursor.feed(await self._execute(cursor.next_call()))
            for finding in batch:
                yield finding
            await asyncio.sleep(cursor.pause_after(batch))


_reconciler: AuditReconciler | None = None
_reconciler_lock = threading.Lock()


def get_audit_reconciler(store: AuditStore | None = None) -> AuditReconciler:
    """The process-wide reconciler, over ``store`` or the process-wide store.

    A new reconciler is made when the store it would use is not the one the
    current reconciler has (for example after ``reset_audit_store``).
    """
    global _reconciler
    target = store if store is not None else get_audit_store()
    with _reconciler_lock:
        if _reconciler is None or _reconciler.store is not target:
            _reconciler = AuditReconciler(target)
        return _reconciler
