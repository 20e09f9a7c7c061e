"""AsyncAuditReconciler gives exactly what the sync reconciler gives, on both backends."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import fakeredis
import pytest
import redis.asyncio

from rac_store import AsyncAuditReconciler, AuditStore, FindingType, RunNotFoundError
from rac_store.reconciler import AuditReconciler

from .support.async_executor import AsyncExecutor
from .support.scenarios import PHASES, generate


def _async_client(backend: str, raw_client: Any) -> Any:
    if backend == "embedded":
        server = raw_client.connection_pool.connection_kwargs["server"]
        return fakeredis.FakeAsyncRedis(server=server)
    kwargs = raw_client.connection_pool.connection_kwargs
    return redis.asyncio.Redis(host=kwargs["host"], port=kwargs["port"])


def test_async_twin_matches_sync(store: AuditStore, raw_client: Any, backend: str) -> None:
    plans = generate(60, seed=5)
    for plan in plans:
        store.add_acks(plan.run_id, plan.acks["early"])
        store.add_expectations(plan.run_id, plan.expectations)
        for phase in PHASES[1:3]:
            if plan.acks[phase]:
                store.add_acks(plan.run_id, plan.acks[phase])
    time.sleep(0.005)
    sync = AuditReconciler(store, metrics=False)

    async def scenario() -> dict[str, Any]:
        client = _async_client(backend, raw_client)
        rec = AsyncAuditReconciler(AsyncExecutor(client, store.core), metrics=False)
        try:
            swept = []
            while True:
                report = await rec.sweep(limit=25)
                swept += report.findings
                if not report.more_due:
                    break
            results = {p.run_id: await rec.reconcile(p.run_id) for p in plans}
            violations = await rec.check_deadline_violations(plans[0].run_id)
            summary = await rec.get_run_audit_summary(plans[0].run_id)
            events = [e async for e in rec.iter_findings()]
            stops = iter([False, True])
            followed = [
                e
                async for e in rec.iter_findings(
                    since="$", follow=True, block_ms=20, should_stop=lambda: next(stops)
                )
            ]
            with pytest.raises(RunNotFoundError):
                await rec.reconcile("00000000-0000-4000-8000-000000000000")
            return {
                "swept": swept,
                "results": results,
                "violations": violations,
                "summary": summary,
                "events": events,
                "followed": followed,
            }
        finally:
            await client.aclose()

    got = asyncio.run(scenario())
    assert {f.run_id for f in got["swept"]} == {str(p.run_id) for p in plans if p.truth().swept}
    for plan in plans:
        mine = got["results"][plan.run_id]
        theirs = sync.reconcile(plan.run_id, record=False)
        assert mine.to_dict() | {"reconciled_at": None} == theirs.to_dict() | {
            "reconciled_at": None
        }
        if plan.acks["late"] == []:  # no late phase here: the truth holds as is
            assert mine.missing_actions == plan.truth().missing
    assert got["violations"] == sync.check_deadline_violations(plans[0].run_id)
    assert (
        got["summary"]["result"]["status"] == sync.reconcile(plans[0].run_id, record=False).status
    )
    assert [e.stream_id for e in got["events"]] == [e.stream_id for e in sync.iter_findings()]
    assert got["followed"] == []
    kinds = {e.type for e in got["events"]}
    assert {FindingType.MISSING, FindingType.INCOMPLETE} <= kinds
