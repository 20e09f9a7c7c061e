"""``rac-store demo``: a small orchestration, end to end.

Several runs declare the standard expectations; workers (threads on the
embedded default, processes on a real Redis) ack the actions; one action fails,
one never arrives, and one ack answers nothing that was expected. The demo then
runs the deadline sweep and the reconciler, and prints each run's expectations,
its verdict and its findings, and what the findings stream received.
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..models import SweepReport, create_domain_ack, create_run_expectations
from ..reconciler import AuditReconciler
from ..store import AuditStore

RUN_TIMEOUT_MS = 1500
GRACE_MS = 500


@dataclass(frozen=True)
class Job:
    """One ack a worker sends: which run and action, and whether it fails."""

    run_id: str
    domain: str
    action: str
    error: str | None = None


def plan_jobs(run_ids: Sequence[str]) -> list[Job]:
    """Every expected action of every run, with the demo's three faults injected."""
    jobs: list[Job] = []
    for index, run_id in enumerate(run_ids):
        for exp in create_run_expectations(uuid.UUID(run_id)):
            domain, action = exp.key()
            if index == 1 and action == "evaluate_policy":
                jobs.append(Job(run_id, domain, action, error="policy engine timed out"))
            elif index == 2 and action == "start_trace":
                continue  # the action that silently never happens
            else:
                jobs.append(Job(run_id, domain, action))
    jobs.append(Job(run_ids[0], "logs", "complete_trace"))  # drift: nobody expected it
    return jobs


def send_jobs(store: AuditStore, jobs: Sequence[Job]) -> None:
    """Ack each job, as a worker would on its hot path."""
    for job in jobs:
        ack = create_domain_ack(uuid.UUID(job.run_id), job.domain, job.action, error=job.error)
        store.add_ack(job.run_id, ack)


def _process_worker(url: str, prefix: str, jobs: Sequence[Job]) -> None:
    store = AuditStore.from_url(url, prefix=prefix)
    try:
        send_jobs(store, jobs)
    finally:
        store.close()


def run_workers(store: AuditStore, jobs: Sequence[Job], workers: int, url: str | None) -> None:
    """Split the jobs over ``workers`` threads (embedded) or processes (Redis)."""
    shares = [list(jobs[i::workers]) for i in range(workers)]
    if url is None:
        threads = [threading.Thread(target=send_jobs, args=(store, share)) for share in shares]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_process_worker, args=(url, store.core.keys.prefix, s)) for s in shares
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a worker process failed with exit code {p.exitcode}")


def report(reconciler: AuditReconciler, run_id: str) -> list[str]:
    """Lines describing one run: each expectation's status, then the reconciler's findings."""
    store = reconciler.store
    expectations = store.get_expectations(run_id)
    errors = {a.key(): a.error for a in store.get_acks(run_id) if not a.is_success}
    result = reconciler.reconcile(run_id)
    lines = [
        f"run {run_id}  {result.status.value}"
        f"  ({result.expectations_count} expected, {result.acks_count} acks)"
    ]
    for exp in expectations:
        domain, action = exp.key()
        late = " (late)" if exp.late else ""
        lines.append(f"  {domain + '/' + action:<32} {exp.status.value}{late}")
    for domain, action in result.missing_actions:
        lines.append(f"  MISSING  {domain}/{action}: never acked before its deadline")
    for domain, action in result.failed_actions:
        lines.append(f"  FAILED   {domain}/{action}: {errors.get((domain, action))}")
    for domain, action in result.drift_actions:
        lines.append(f"  DRIFT    {domain}/{action}: acked, never expected")
    if result.stale_run:
        lines.append("  STALE    the run never reported finalize_run")
    if result.is_clean:
        lines.append("  clean: every expected action was acked")
    return lines


def orchestrate(
    reconciler: AuditReconciler, runs: int, workers: int, url: str | None = None
) -> tuple[list[str], SweepReport]:
    """The demo's orchestration on the reconciler's store: its run ids and the sweep's report.

    At least three runs declare the standard expectations, the workers ack them
    (with the three faults of :func:`plan_jobs`), every deadline passes, one sweep runs.
    """
    store = reconciler.store
    run_ids = [str(uuid.uuid4()) for _ in range(max(runs, 3))]
    for run_id in run_ids:
        store.add_expectations(
            run_id, create_run_expectations(uuid.UUID(run_id), RUN_TIMEOUT_MS, GRACE_MS)
        )
    run_workers(store, plan_jobs(run_ids), workers, url)
    time.sleep((RUN_TIMEOUT_MS + GRACE_MS) / 1000 + 0.05)  # let every deadline pass
    return run_ids, reconciler.sweep()


def run_demo(url: str | None, runs: int, workers: int) -> int:
    """Run the orchestration, sweep, reconcile and print the report; 0 on success."""
    store = AuditStore.from_url(url, prefix="racdemo") if url else AuditStore()
    reconciler = AuditReconciler(store)
    mode = store.durability_mode.value
    print(f"rac-store demo: {runs} runs, {workers} workers, store mode {mode}")
    run_ids, swept = orchestrate(reconciler, runs, workers, url)
    print(
        f"\ndeadline sweep: {swept.runs_swept} overdue run(s),"
        f" {len(swept.missing)} expectation(s) marked MISSING"
    )
    for run_id in run_ids:
        print()
        print("\n".join(report(reconciler, run_id)))
    kinds = Counter(f.type.value for f in reconciler.iter_findings())
    print(f"\nfindings stream: {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}")
    if url:
        for run_id in run_ids:
            store.clear_run(run_id)
        store.client.delete(*store.core.keys.all_findings())
    store.close()
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the CLI."""
    parser = commands.add_parser("demo", help="run a small orchestration and show its findings")
    parser.add_argument(
        "--redis-url", help="use this Redis (worker processes) instead of the embedded store"
    )
    parser.add_argument("--runs", type=int, default=3, help="number of runs (at least 3)")
    parser.add_argument("--workers", type=int, default=4, help="number of workers")
    parser.set_defaults(run=lambda args: run_demo(args.redis_url, args.runs, max(1, args.workers)))
