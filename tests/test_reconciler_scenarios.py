"""Randomized scenarios: the reconciler's findings equal the ground truth exactly.

1,000 runs per backend with injected missing, failed (with a FAILED status, or an
error and the default status), retried, rolled back, drift, duplicate, late and
out-of-order acks, and runs ended early by ``end_run`` (tests/support/scenarios.py).
On the redis and cluster backends the acks are written by several real processes.
Zero false alarms and zero missed findings, for the verdicts (live and
``final=True``), the sweep, ``end_run`` and the stream's verdict events.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from rac_store import AuditStore, DomainAck, FindingType, ReconciliationResult
from rac_store.reconciler import AuditReconciler

from .support.cluster import LocalCluster
from .support.redis_server import RedisServer
from .support.scenarios import PHASES, RunPlan, Score, Truth, generate

RUNS = 1_000
PROCESSES = 4
SEED = 20_261_128

Batch = list[tuple[str, list[DomainAck]]]
Send = Callable[[Batch], None]

_worker_store: AuditStore | None = None


def _send_chunk(url: str, chunk: Batch) -> int:
    """In a worker process: one add_acks call per run of the chunk."""
    global _worker_store
    if _worker_store is None:
        _worker_store = AuditStore.from_url(url, metrics=False)
    for run, acks in chunk:
        _worker_store.add_acks(run, acks)
    return len(chunk)


@pytest.fixture
def send(backend: str, store: AuditStore, request: pytest.FixtureRequest) -> Iterator[Send]:
    """How a phase's acks are written: in-process (embedded) or from worker processes."""
    if backend.endswith("embedded"):

        def local(batch: Batch) -> None:
            for run, acks in batch:
                store.add_acks(run, acks)

        yield local
        return
    server: RedisServer | LocalCluster = request.getfixturevalue(
        "redis_cluster" if backend.endswith("cluster") else "redis_server"
    )
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:

        def remote(batch: Batch) -> None:
            chunks = [(server.url, batch[i::PROCESSES]) for i in range(PROCESSES)]
            assert sum(pool.starmap(_send_chunk, chunks)) == len(batch)

        yield remote


def _phase(plans: Sequence[RunPlan], phase: str) -> Batch:
    return [(str(p.run_id), p.acks[phase]) for p in plans if p.acks[phase]]


def play(store: AuditStore, plans: Sequence[RunPlan], send: Send) -> dict[str, Any]:
    """Run every phase; returns the sweep's findings, the verdicts and the stream."""
    reconciler = AuditReconciler(store, metrics=False)
    send(_phase(plans, "early"))
    for plan in plans:
        store.add_expectations(plan.run_id, plan.expectations)
    send(_phase(plans, "main"))
    for plan in plans:
        if plan.ended:
            reconciler.end_run(plan.run_id)
    time.sleep(0.005)  # every 0 ms deadline is now behind the server clock
    send(_phase(plans, "overdue"))
    swept = []
    while True:
        report = reconciler.sweep(limit=400)
        swept += report.findings
        if not report.more_due:
            break
    send(_phase(plans, "late"))
    results = {str(p.run_id): reconciler.reconcile(p.run_id) for p in plans}
    final = {str(p.run_id): reconciler.reconcile(p.run_id, final=True) for p in plans}
    events = list(reconciler.iter_findings())
    return {"swept": swept, "results": results, "final": final, "events": events}


def _as_truth(result: ReconciliationResult) -> dict[str, Any]:
    return {
        "missing": result.missing_actions,
        "failed": result.failed_actions,
        "drift": result.drift_actions,
        "pending": result.pending_actions,
        "late": result.late_actions,
        "stale": result.stale_run,
        "status": result.status,
        "expectations": result.expectations_count,
        "acks": result.acks_count,
    }


NOT_IN_A_RESULT = ("swept", "ended", "final_missing", "final_status", "verdicts")


def _expected(truth: Truth) -> dict[str, Any]:
    return {k: v for k, v in vars(truth).items() if k not in NOT_IN_A_RESULT}


def score(plans: Sequence[RunPlan], outcome: dict[str, Any]) -> Score:
    """Compare everything found with the truth; returns the counts."""
    marks: dict[str, set[object]] = defaultdict(set)
    for finding in outcome["swept"]:
        assert finding.type is FindingType.MISSING, finding  # nothing expired here
        marks[finding.run_id].add((finding.domain, finding.action))
    ended: dict[str, set[object]] = defaultdict(set)
    for e in outcome["events"]:
        if e.type is FindingType.MISSING and e.source == "end":
            ended[e.run_id].add((e.domain, e.action))
    result = Score()
    for plan in plans:
        run, truth = str(plan.run_id), plan.truth()
        found, final = outcome["results"][run], outcome["final"][run]
        result.add("missing", set(truth.missing), set(found.missing_actions))
        result.add("failed", set(truth.failed), set(found.failed_actions))
        result.add("drift", set(truth.drift), set(found.drift_actions))
        result.add("stale", {run} if truth.stale else set(), {run} if found.stale_run else set())
        result.add("swept", set(truth.swept), marks[run])
        result.add("ended", set(truth.ended), ended[run])
        result.add("final_missing", set(truth.final_missing), set(final.missing_actions))
    return result


def check_stream(plans: Sequence[RunPlan], outcome: dict[str, Any]) -> Counter[int]:
    """The stream holds exactly the events the truth implies, in order, once each.

    Returns how many runs got how many verdict events.
    """
    marks: Counter[tuple[str, Any, str]] = Counter()
    pushed: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e in outcome["events"]:
        if e.type is FindingType.MISSING:
            marks[(e.run_id, (e.domain, e.action), e.source)] += 1
        else:
            pushed[e.run_id].append((e.type.value, e.source))
    expected: Counter[tuple[str, Any, str]] = Counter()
    for plan in plans:
        run, truth = str(plan.run_id), plan.truth()
        expected.update((run, key, "sweep") for key in truth.swept)
        expected.update((run, key, "end") for key in truth.ended)
        assert pushed[run] == truth.verdicts, (run, plan.fates, plan.ended)
    assert marks == expected
    return Counter(len(pushed[str(p.run_id)]) for p in plans)


@pytest.mark.slow
def test_findings_equal_ground_truth(store: AuditStore, send: Send, backend: str) -> None:
    plans = generate(RUNS, SEED, end_share=0.2)
    kinds = Counter(fate for p in plans for fate in p.fates.values())
    assert min(kinds.values()) > 100, kinds  # every fate is well represented
    assert sum(bool(p.drift) for p in plans) > 100
    assert sum(len(p.acks["late"]) for p in plans) > 100
    assert sum(p.ended for p in plans) > 100
    outcome = play(store, plans, send)
    mismatches = [
        (str(p.run_id), _expected(p.truth()), _as_truth(outcome["results"][str(p.run_id)]))
        for p in plans
        if _expected(p.truth()) != _as_truth(outcome["results"][str(p.run_id)])
    ]
    assert mismatches == []
    finals = [(str(p.run_id), p.truth().final_status) for p in plans]
    assert [(run, outcome["final"][run].status) for run, _ in finals] == finals
    result = score(plans, outcome)
    per_run = check_stream(plans, outcome)
    settled = sum(1 for p in plans if p.truth().verdicts)
    print(
        f"\n{backend}: {RUNS} runs ({sum(p.ended for p in plans)} ended early)\n{result.table()}"
        f"\nverdict events per run: {dict(sorted(per_run.items()))};"
        f" runs with a pushed verdict: {settled}"
    )
    assert all(result.fp[k] == 0 and result.fn[k] == 0 for k in result.tp), result.table()
    assert all(result.tp[k] > 0 for k in result.tp)
    assert store.get_pending_run_ids(due_before=store.server_time_ms()) == []


def test_plans_are_reproducible_and_cover_every_phase() -> None:
    first, second = generate(50, 7, 0.2), generate(50, 7, 0.2)
    assert [p.truth().status for p in first] == [p.truth().status for p in second]
    assert [sorted(p.fates.items()) for p in first] == [sorted(p.fates.items()) for p in second]
    assert all(any(p.acks[phase] for p in generate(200, 3)) for phase in PHASES)
