"""AsyncAuditReconciler: the asyncio twin of :class:`~rac_store.reconciler.AuditReconciler`.

It drives the same sans-I/O steps (:mod:`rac_store.reconciliation`) with an
async store's ``execute`` coroutine; nothing of the logic is repeated here.
Any store with a ``core`` and an ``async execute(call)`` will do.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from .. import reconciliation as rc
from ..core import DEFAULT_SWEEP_MARKS
from ..metrics import MetricsOption
from ..models import AuditExpectation, PendingReport, ReconciliationResult, SweepReport
from ..reconciler import ReconcilerBase
from .consumer import AsyncFindingsConsumer


class AsyncAuditReconciler(ReconcilerBase):
    """Findings of runs, sweep and findings stream on an asyncio store."""

    def __init__(self, store: Any, *, metrics: MetricsOption = None) -> None:
        super().__init__(store, metrics)

    async def _run(self, make: Callable[[], rc.Steps[rc.T]]) -> rc.T:
        """Open the store first (an AsyncAuditStore reads its epochs, or a read-only one
        its layout, then), then build the steps on its core and drive them."""
        opening = getattr(self._store, "initialize", None)
        if opening is not None:
            await opening()
        return await rc.run_steps_async(make(), self._store.execute)

    async def reconcile(
        self, run_id: uuid.UUID | str, *, final: bool = False, record: bool | None = None
    ) -> ReconciliationResult:
        """See :meth:`AuditReconciler.reconcile`."""
        started = time.perf_counter()
        result = await self._run(lambda: self._reconcile_steps(run_id, record, final))
        return self._observed(result, started)

    async def end_run(self, run_id: uuid.UUID | str) -> ReconciliationResult:
        """See :meth:`AuditReconciler.end_run`."""
        started = time.perf_counter()
        return self._observed(await self._run(lambda: self._end_run_steps(run_id)), started)

    async def snapshot(self, run_id: uuid.UUID | str) -> rc.RunSnapshot:
        """See :meth:`AuditReconciler.snapshot`."""
        return await self._run(lambda: rc.snapshot_steps(self._core, run_id))

    async def pending(self, *, due_only: bool = False, limit: int = 100) -> PendingReport:
        """See :meth:`AuditReconciler.pending`."""
        return await self._run(lambda: rc.pending_steps(self._core, due_only, limit))

    async def check_deadline_violations(self, run_id: uuid.UUID | str) -> list[AuditExpectation]:
        """See :meth:`AuditReconciler.check_deadline_violations`."""
        return await self._run(lambda: rc.violations_steps(self._core, run_id))

    async def get_run_audit_summary(self, run_id: uuid.UUID | str) -> dict[str, Any]:
        """See :meth:`AuditReconciler.get_run_audit_summary`."""
        return await self._run(lambda: rc.summary_steps(self._core, run_id))

    async def sweep(
        self, *, limit: int = 1000, marks_per_run: int = DEFAULT_SWEEP_MARKS
    ) -> SweepReport:
        """See :meth:`AuditReconciler.sweep`."""
        return await self._run(lambda: self._sweep_steps(limit, marks_per_run))

    async def findings_positions(self) -> dict[int, str]:
        """See :meth:`AuditReconciler.findings_positions`."""
        return await self._run(lambda: rc.positions_steps(self._core))

    def consumer(self, group: str, name: str) -> AsyncFindingsConsumer:
        """See :meth:`AuditReconciler.consumer` (making one does no I/O)."""
        return AsyncFindingsConsumer(self._store.execute, self._group_cursor(group, name))
