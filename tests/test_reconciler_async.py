"""AsyncAuditReconciler on AsyncAuditStore gives exactly what the sync reconciler gives."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import fakeredis
import pytest
import redis.asyncio

from rac_store import (
    AsyncAuditReconciler,
    AsyncAuditStore,
    AuditStore,
    FindingType,
    InvalidInputError,
    RunNotFoundError,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.reconciler import AuditReconciler
from rac_store.scripts import ScriptCall

from .support.scenarios import PHASES, generate


@pytest.fixture(params=["embedded", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    """The sync store writes, the async store reads the same server."""
    return str(request.param)


def _async_client(backend: str, raw_client: Any) -> Any:
    if backend == "embedded":
        return fakeredis.FakeAsyncRedis(
            server=raw_client.connection_pool.connection_kwargs["server"]
        )
    kwargs = raw_client.connection_pool.connection_kwargs
    return redis.asyncio.Redis(host=kwargs["host"], port=kwargs["port"])


async def _collect(rec: AsyncAuditReconciler, plans: Any) -> dict[str, Any]:
    swept = []
    while True:
        report = await rec.sweep(limit=25)
        swept += report.findings
        if not report.more_due:
            break
    stops = iter([False, True])
    followed = [
        e
        async for e in rec.iter_findings(
            since=await rec.findings_positions(),
            follow=True,
            block_ms=20,
            should_stop=lambda: next(stops),
        )
    ]
    with pytest.raises(RunNotFoundError):
        await rec.reconcile("00000000-0000-4000-8000-000000000000")
    return {
        "swept": swept,
        "results": {p.run_id: await rec.reconcile(p.run_id) for p in plans},
        "violations": await rec.check_deadline_violations(plans[0].run_id),
        "summary": await rec.get_run_audit_summary(plans[0].run_id),
        "pending": await rec.pending(),
        "events": [e async for e in rec.iter_findings()],
        "followed": followed,
    }


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
        async with AsyncAuditStore(_async_client(backend, raw_client), metrics=False) as aio:
            return await _collect(AsyncAuditReconciler(aio, metrics=False), plans)

    got = asyncio.run(scenario())
    assert {f.run_id for f in got["swept"]} == {str(p.run_id) for p in plans if p.truth().swept}
    for plan in plans:
        mine = got["results"][plan.run_id].to_dict() | {"reconciled_at": None}
        theirs = sync.reconcile(plan.run_id, record=False).to_dict() | {"reconciled_at": None}
        assert mine == theirs
    assert got["violations"] == sync.check_deadline_violations(plans[0].run_id)
    summary = sync.get_run_audit_summary(plans[0].run_id)
    assert got["summary"]["result"]["status"] == summary["result"]["status"]
    assert [r.run_id for r in got["pending"].runs] == [r.run_id for r in sync.pending().runs]
    assert [e.stream_id for e in got["events"]] == [e.stream_id for e in sync.iter_findings()]
    assert got["followed"] == []
    assert {FindingType.MISSING, FindingType.INCOMPLETE} <= {e.type for e in got["events"]}


def test_async_store_execute_maps_errors(raw_client: Any, backend: str) -> None:
    async def scenario() -> None:
        async with AsyncAuditStore(_async_client(backend, raw_client), metrics=False) as aio:
            bad = aio.core.sweep_run("00000000-0000-4000-8000-000000000000")
            with pytest.raises(InvalidInputError):
                await aio.execute(ScriptCall("sweep_run", bad.keys, bad.args[:3], "sweep"))
            (reply,) = await aio.execute(aio.core.server_time())
            assert int(reply[0]) > 0

    asyncio.run(scenario())


def test_async_final_verdict_and_end_run_match_sync(
    store: AuditStore, raw_client: Any, backend: str
) -> None:
    runs = [uuid.uuid4() for _ in range(3)]
    for run in runs:
        store.add_expectations(run, create_run_expectations(run))
        store.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
    sync = AuditReconciler(store, metrics=False)
    expected = [sync.reconcile(run, final=True).to_dict() for run in runs]

    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        async with AsyncAuditStore(_async_client(backend, raw_client), metrics=False) as aio:
            rec = AsyncAuditReconciler(aio, metrics=False)
            final = [(await rec.reconcile(run, final=True)).to_dict() for run in runs]
            ended = [(await rec.end_run(run)).to_dict() for run in runs]
            again = [(await rec.end_run(run)).status for run in runs]
            return final, ended, again

    final, ended, again = asyncio.run(scenario())
    without_time = [{k: v for k, v in d.items() if k != "reconciled_at"} for d in expected]
    assert [{k: v for k, v in d.items() if k != "reconciled_at"} for d in final] == without_time
    assert [d["status"] for d in ended] == ["STALE"] * 3 == [s.value for s in again]
    stale = [e for e in sync.iter_findings() if e.type is FindingType.STALE]
    assert sorted(e.run_id for e in stale) == sorted(map(str, runs))  # one each, not two
