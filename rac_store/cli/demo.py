"""``rac-store demo``: a small orchestration, end to end, on a store of its own.

Several runs declare the standard expectations; worker processes ack the
actions; one action fails, one never arrives, and one ack answers nothing that
was expected. The demo then runs the deadline sweep and the reconciler, and
prints each run's expectations, its verdict and its findings, and what the
findings stream received.

The demo never touches a store it did not create: it works under a prefix of its
own (``racdemo-<random>``), so its sweep and its findings are only its own, and
it deletes every key it wrote at the end. ``RAC_REDIS_URL`` is ignored: with no
``--redis-url`` the workers share the embedded store, served to them over the
Redis protocol on a free loopback port (what ``rac-store serve`` does).
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..embedded import create_embedded_client
from ..errors import RACStoreError
from ..models import AuditExpectation, ReconciliationResult, SweepReport, create_domain_ack
from ..models import create_run_expectations as standard_expectations
from ..reconciler import AuditReconciler
from ..serve import EmbeddedRedisServer
from ..store import AuditStore
from .common import EXIT_OK, add_json_option, add_url_option, at_least, positive, shown_url
from .output import emit_json

RUN_TIMEOUT_MS = 1500
GRACE_MS = 500
MIN_RUNS = 3
"""The three faults need three runs."""
STARTUP_TIMEOUT = 120.0
"""Seconds for the worker processes to start and connect."""


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
        for exp in standard_expectations(uuid.UUID(run_id)):
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


def _process_worker(url: str, prefix: str, jobs: Sequence[Job], ready: Any, go: Any) -> None:
    store = AuditStore.from_url(url, prefix=prefix, metrics=False, allow_no_persistence=True)
    try:
        ready.wait(STARTUP_TIMEOUT)
        go.wait(STARTUP_TIMEOUT)
        send_jobs(store, jobs)
    finally:
        store.close()


def run_worker_processes(
    url: str, prefix: str, jobs: Sequence[Job], workers: int, declare: Callable[[], None]
) -> None:
    """Split the jobs over ``workers`` processes acking through the store at ``url``.

    ``declare()`` runs once every worker is up and connected, just before they
    start acking, so that the runs' deadlines do not include process start-up.
    """
    shares = [share for share in (list(jobs[i::workers]) for i in range(workers)) if share]
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Barrier(len(shares) + 1), ctx.Event()
    procs = [
        ctx.Process(target=_process_worker, args=(url, prefix, share, ready, go))
        for share in shares
    ]
    for p in procs:
        p.start()
    try:
        ready.wait(STARTUP_TIMEOUT)
        declare()
    finally:
        go.set()
        for p in procs:
            p.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise RACStoreError(f"{len(failed)} worker process(es) failed (exit codes {failed})")


def run_worker_threads(store: AuditStore, jobs: Sequence[Job], workers: int) -> None:
    """Split the jobs over ``workers`` threads acking on ``store`` (one process)."""
    threads = [
        threading.Thread(target=send_jobs, args=(store, jobs[i::workers])) for i in range(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def orchestrate(
    reconciler: AuditReconciler, runs: int, workers: int, url: str | None = None
) -> tuple[list[str], SweepReport]:
    """The demo's orchestration on the reconciler's store: its run ids and the sweep's report.

    ``runs`` runs declare the standard expectations, the workers ack them (with the
    faults of :func:`plan_jobs`; the drift ack comes last, so the stream shows the
    first run COMPLETE, then INCOMPLETE), every deadline passes, one sweep runs. The
    workers are processes acking through ``url`` (the same store, served or on a
    Redis); with no ``url``, threads acking on the store itself (to fill a store
    in this process, as the dashboard's demo data does).
    """
    store = reconciler.store
    run_ids = [str(uuid.uuid4()) for _ in range(max(runs, MIN_RUNS))]

    def declare() -> None:
        for run_id in run_ids:
            declared = standard_expectations(uuid.UUID(run_id), RUN_TIMEOUT_MS, GRACE_MS)
            store.add_expectations(run_id, declared)

    *jobs, drift = plan_jobs(run_ids)
    if url is None:
        declare()
        run_worker_threads(store, jobs, workers)
    else:
        run_worker_processes(url, store.core.keys.prefix, jobs, workers, declare)
    send_jobs(store, [drift])  # last: the first run was complete until this ack came
    time.sleep((RUN_TIMEOUT_MS + GRACE_MS) / 1000 + 0.05)  # let every deadline pass
    return run_ids, reconciler.sweep()


@contextmanager
def demo_store(url: str | None, prefix: str) -> Iterator[tuple[AuditStore, str]]:
    """The demo's store under its own ``prefix``, and the URL its worker processes use.

    With no ``url``: the embedded store, served on a free loopback port. On the way
    out every key under the prefix is deleted (runs, pending indexes, findings
    streams, meta).
    """
    served: EmbeddedRedisServer | None = None
    if url is None:
        served = EmbeddedRedisServer(port=0).start()
        store = AuditStore(create_embedded_client(served.embedded), prefix=prefix, metrics=False)
        url = served.url
    else:  # a scratch store, deleted at the end: whether the server persists is moot
        store = AuditStore.from_url(url, prefix=prefix, metrics=False, allow_no_persistence=True)
    try:
        yield store, url
    finally:
        try:
            delete_store(store)
        finally:
            store.close()
            if served is not None:
                served.shutdown()


def delete_store(store: AuditStore) -> None:
    """Delete every key under the store's prefix, one at a time (a cluster spreads them)."""
    keys = store.core.keys
    found = store.client.scan_iter(match=f"{keys.prefix}:*", count=1000)
    for key in {*found, *keys.all_pending(), *keys.all_findings(), keys.meta}:
        store.client.delete(key)


@dataclass(frozen=True)
class RunReport:
    """One run after the demo: its expectations, failed acks' errors and its verdict."""

    expectations: list[AuditExpectation]
    errors: dict[tuple[str, str], str | None]
    result: ReconciliationResult

    def lines(self) -> list[str]:
        """The run for people: each expectation's status, then the findings."""
        result = self.result
        lines = [
            f"run {result.run_id}  {result.status}"
            f"  ({result.expectations_count} expected, {result.acks_count} acks)"
        ]
        for exp in self.expectations:
            late = " (late)" if exp.late else ""
            lines.append(f"  {exp.domain + '/' + exp.action:<32} {exp.status}{late}")
        for domain, action in result.missing_actions:
            lines.append(f"  MISSING  {domain}/{action}: never acked before its deadline")
        for domain, action in result.failed_actions:
            lines.append(f"  FAILED   {domain}/{action}: {self.errors.get((domain, action))}")
        for domain, action in result.drift_actions:
            lines.append(f"  DRIFT    {domain}/{action}: acked, never expected")
        if result.stale_run:
            lines.append("  STALE    the run never reported finalize_run")
        if result.is_clean:
            lines.append("  clean: every expected action was acked")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data."""
        return {
            **self.result.to_dict(),
            "expectations": [e.to_dict() for e in self.expectations],
            "errors": [[d, a, error] for (d, a), error in sorted(self.errors.items())],
        }


def report(reconciler: AuditReconciler, run_id: str) -> RunReport:
    """One run: expectations, the errors of its failed acks, and the reconciler's verdict."""
    store = reconciler.store
    expectations = store.get_expectations(run_id)
    errors = {a.key(): a.error for a in store.get_acks(run_id) if not a.is_success}
    return RunReport(expectations, errors, reconciler.reconcile(run_id))


def run_demo(url: str | None, runs: int, workers: int, *, as_json: bool = False) -> int:
    """Run the orchestration, sweep, reconcile and print the report; 0 on success."""
    prefix = f"racdemo-{uuid.uuid4().hex[:12]}"
    with demo_store(url, prefix) as (store, workers_url):
        reconciler = AuditReconciler(store, metrics=False)
        mode = store.durability_mode.value
        if not as_json:
            where = "the embedded store" if url is None else shown_url(url)
            print(f"rac-store demo: {runs} runs, {workers} worker processes, store mode {mode}")
            print(f"(on {where}, under its own prefix {prefix}, deleted at the end)")
        run_ids, swept = orchestrate(reconciler, runs, workers, workers_url)
        reports = [report(reconciler, run_id) for run_id in run_ids]
        kinds = Counter(f.type.value for f in reconciler.iter_findings())
    if as_json:
        emit_json(
            {
                "mode": mode,
                "prefix": prefix,
                "sweep": swept.to_dict(),
                "runs": [r.to_dict() for r in reports],
                "findings_stream": dict(sorted(kinds.items())),
            }
        )
        return EXIT_OK
    print(
        f"\ndeadline sweep: {swept.runs_swept} overdue run(s),"
        f" {len(swept.missing)} expectation(s) marked MISSING"
    )
    for run in reports:
        print()
        print("\n".join(run.lines()))
    print(f"\nfindings stream: {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}")
    return EXIT_OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the CLI."""
    parser = commands.add_parser(
        "demo", help="run a small orchestration and show its findings (on a store of its own)"
    )
    add_url_option(
        parser,
        "use this Redis, under a prefix of its own, deleted at the end (default: the"
        " embedded store; RAC_REDIS_URL is ignored)",
        from_env=False,
    )
    parser.add_argument(
        "--runs", type=at_least(MIN_RUNS), default=MIN_RUNS, help="number of runs (at least 3)"
    )
    parser.add_argument("--workers", type=positive, default=4, help="worker processes (4)")
    add_json_option(parser)
    parser.set_defaults(
        run=lambda args: run_demo(args.redis_url, args.runs, args.workers, as_json=args.json)
    )
