"""AuditReconciler: findings of runs, the deadline sweep and the findings stream (sync).

The logic lives in :mod:`rac_store.reconcile_core` (sans-I/O); this class only
drives it with a store's ``execute``. :class:`~rac_store.reconciler_async.AsyncAuditReconciler`
is its asyncio twin.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from .core import DEFAULT_SWEEP_MARKS, Call, StoreCore
from .findings import FindingsCursor, Since, parse_tail
from .metrics import Metrics, MetricsOption, resolve_metrics
from .models import (
    AuditExpectation,
    Finding,
    PendingReport,
    ReconciliationResult,
    SweepReport,
)
from .reconcile_core import (
    RunSnapshot,
    Steps,
    T,
    deadline_violations,
    pending_steps,
    reconcile_steps,
    run_steps,
    snapshot_steps,
    summary,
    sweep_steps,
    verdict,
)
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
    def store(self) -> Any:
        """The store this reconciler reads and sweeps."""
        return self._store

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

    def _run(self, steps: Steps[T]) -> T:
        return run_steps(steps, self._store.execute)

    def reconcile(self, run_id: uuid.UUID | str, *, record: bool = True) -> ReconciliationResult:
        """The run's verdict and findings (RunNotFoundError for an unknown run).

        A STALE or INCOMPLETE verdict is appended to the findings stream unless
        ``record`` is False. Nothing else is written: an overdue PENDING
        expectation counts as missing here, and only the sweep marks it MISSING.
        """
        started = time.perf_counter()
        result = self._run(reconcile_steps(self._store.core, run_id, record))
        return self._observed(result, started)

    def snapshot(self, run_id: uuid.UUID | str) -> RunSnapshot:
        """One consistent read of the run (expectations, due times, drift, server time)."""
        return self._run(snapshot_steps(self._store.core, run_id))

    def pending(self, *, due_only: bool = False, limit: int = 100) -> PendingReport:
        """Runs in the pending indexes, earliest due first; only overdue ones with ``due_only``."""
        return self._run(pending_steps(self._store.core, due_only, limit))

    def check_deadline_violations(self, run_id: uuid.UUID | str) -> list[AuditExpectation]:
        """Expectations that missed their deadline: MISSING, PENDING past due, or acked late."""
        return deadline_violations(self._run(snapshot_steps(self._store.core, run_id)))

    def get_run_audit_summary(self, run_id: uuid.UUID | str) -> dict[str, Any]:
        """Counts by status, next due time and the verdict of one run (nothing recorded)."""
        snapshot = self._run(snapshot_steps(self._store.core, run_id))
        return summary(snapshot, verdict(snapshot))

    def sweep(self, *, limit: int = 1000, marks_per_run: int = DEFAULT_SWEEP_MARKS) -> SweepReport:
        """Mark overdue expectations MISSING in at most ``limit`` due runs (one script each).

        Runs are taken earliest-due first from every shard's pending index, by
        server time; runs whose keys expired leave the index as EXPIRED findings.
        ``more_due`` in the report says whether another call has work left.
        """
        return self._run(sweep_steps(self._store.core, limit, marks_per_run))

    def findings_positions(self) -> dict[int, str]:
        """The last stream id of every shard: pass it as ``since`` to read what comes after."""
        return parse_tail(self._store.execute(self._store.core.findings_tail()))

    def iter_findings(
        self,
        *,
        since: Since = "0",
        follow: bool = False,
        count: int = 500,
        block_ms: int = 1000,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[Finding]:
        """Events of every shard's findings stream, oldest first per shard.

        ``since``: "0" (all the streams still hold), "$" (only new ones) or an id
        per shard. Without ``follow`` the iterator ends when it has caught up;
        with it, it waits (``XREAD BLOCK block_ms``) for more until
        ``should_stop()`` returns True, checked at least every ``block_ms``.
        """
        cursor = FindingsCursor(self._store.core, since)
        if cursor.needs_tail:
            cursor.set_tail(self._store.execute(cursor.tail_call()))
        while should_stop is None or not should_stop():
            call = cursor.next_call(count, block_ms if follow else None)
            batch = cursor.feed(self._store.execute(call))
            yield from batch
            if not batch and not follow:
                return


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
