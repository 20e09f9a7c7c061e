"""AsyncAuditReconciler: the asyncio twin of :class:`~rac_store.reconciler.AuditReconciler`.

It drives the same sans-I/O steps (:mod:`rac_store.reconcile_core`) with an
async store's ``execute`` coroutine; nothing of the logic is repeated here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from .core import DEFAULT_SWEEP_MARKS, Call, StoreCore
from .findings import FindingsCursor, Since, parse_tail
from .metrics import MetricsOption
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
    run_steps_async,
    snapshot_steps,
    summary,
    sweep_steps,
    verdict,
)
from .reconciler import ReconcilerBase


class AsyncReconcilerStore(Protocol):
    """What the async reconciler needs of a store: its core and an ``execute`` coroutine."""

    @property
    def core(self) -> StoreCore:
        """Key space, TTL and call builders."""

    async def execute(self, call: Call) -> Any:
        """Send one call; the raw reply."""


class AsyncAuditReconciler(ReconcilerBase):
    """Findings of runs, sweep and findings stream on an asyncio store."""

    def __init__(self, store: AsyncReconcilerStore, *, metrics: MetricsOption = None) -> None:
        super().__init__(store, metrics)

    async def _run(self, steps: Steps[T]) -> T:
        return await run_steps_async(steps, self._store.execute)

    async def reconcile(
        self, run_id: uuid.UUID | str, *, record: bool = True
    ) -> ReconciliationResult:
        """See :meth:`AuditReconciler.reconcile`."""
        started = time.perf_counter()
        result = await self._run(reconcile_steps(self._store.core, run_id, record))
        return self._observed(result, started)

    async def snapshot(self, run_id: uuid.UUID | str) -> RunSnapshot:
        """See :meth:`AuditReconciler.snapshot`."""
        return await self._run(snapshot_steps(self._store.core, run_id))

    async def pending(self, *, due_only: bool = False, limit: int = 100) -> PendingReport:
        """See :meth:`AuditReconciler.pending`."""
        return await self._run(pending_steps(self._store.core, due_only, limit))

    async def check_deadline_violations(self, run_id: uuid.UUID | str) -> list[AuditExpectation]:
        """See :meth:`AuditReconciler.check_deadline_violations`."""
        return deadline_violations(await self._run(snapshot_steps(self._store.core, run_id)))

    async def get_run_audit_summary(self, run_id: uuid.UUID | str) -> dict[str, Any]:
        """See :meth:`AuditReconciler.get_run_audit_summary`."""
        snapshot = await self._run(snapshot_steps(self._store.core, run_id))
        return summary(snapshot, verdict(snapshot))

    async def sweep(
        self, *, limit: int = 1000, marks_per_run: int = DEFAULT_SWEEP_MARKS
    ) -> SweepReport:
        """See :meth:`AuditReconciler.sweep`."""
        return await self._run(sweep_steps(self._store.core, limit, marks_per_run))

    async def findings_positions(self) -> dict[int, str]:
        """See :meth:`AuditReconciler.findings_positions`."""
        return parse_tail(await self._store.execute(self._store.core.findings_tail()))

    async def iter_findings(
        self,
        *,
        since: Since = "0",
        follow: bool = False,
        count: int = 500,
        block_ms: int = 1000,
        should_stop: Callable[[], bool] | None = None,
    ) -> AsyncIterator[Finding]:
        """See :meth:`AuditReconciler.iter_findings`."""
        cursor = FindingsCursor(self._store.core, since)
        if cursor.needs_tail:
            cursor.set_tail(await self._store.execute(cursor.tail_call()))
        while should_stop is None or not should_stop():
            call = cursor.next_call(count, block_ms if follow else None)
            batch = cursor.feed(await self._store.execute(call))
            for finding in batch:
                yield finding
            if not batch and not follow:
                return
