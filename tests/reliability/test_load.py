"""Issue 6, item 7: load — 16 processes x 5,000 acks with a sweeper running meanwhile.

Zero lost, zero duplicated, every status follows from the stored acks, no
connection-pool exhaustion (every worker runs on a bounded blocking pool, so a
leaked connection would surface as an error). The server's SLOWLOG is printed,
not asserted: speed is measured by the benchmark runner (``python -m benchmarks``,
figure ``slowlog_10ms``: store scripts over 10 ms under 8 processes, SET beside).

Meanwhile the reconciler sweeps (``AuditReconciler.sweep``: one script per due
run marks what is overdue MISSING) and reconciles one run per pass.

``RAC_LOAD_WORKERS`` / ``RAC_LOAD_ACKS`` scale the load (defaults 16 / 5000).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rac_store import AuditReconciler, AuditStore

from ..support.faults import command_stats
from ..support.redis_server import RedisServer
from ..support.workload import WorkerSpec, audit, run_workers, start_runs, worker_specs

WORKERS = int(os.environ.get("RAC_LOAD_WORKERS", "16"))
ACKS_PER_WORKER = int(os.environ.get("RAC_LOAD_ACKS", "5000"))
SLOW_MS = 10
RUNS = 64


class Sweeper:
    """The reconciler's deadline sweep (and a reconcile of one run) in a loop, until stopped."""

    def __init__(self, store: AuditStore, runs: list[str]) -> None:
        self.reconciler = AuditReconciler(store)
        self.runs = runs
        self.passes = self.marked = self.reconciled = 0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.marked += len(self.reconciler.sweep(limit=1000).missing)
                self.reconciler.reconcile(self.runs[self.passes % len(self.runs)])
                self.reconciled += 1
            except Exception as exc:  # every error is a finding of this test
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.passes += 1
            time.sleep(0.02)


@pytest.mark.slow
def test_16_processes_x_5000_acks_with_a_sweeper(tmp_path: Path) -> None:
    slowlog = ["--slowlog-log-slower-than", str(SLOW_MS * 1000), "--slowlog-max-len", "100000"]
    server = RedisServer(slowlog).start()
    try:
        admin = server.client()
        store = AuditStore(server.client())
        runs = start_runs(store, RUNS // 2, deadline_ms=300)  # due during the load
        runs += start_runs(store, RUNS // 2)

        def vary(i: int) -> dict[str, Any]:
            return {
                "batch": 10 if i % 4 == 1 else 1,  # a quarter send batches of 10
                "concurrency": 32 if i % 8 == 7 else 0,  # two are auto-pipelined async stores
            }

        # pool_size=1: a bounded blocking pool, so a leaked connection would block
        bounded = WorkerSpec(server.url, runs, ACKS_PER_WORKER, pool_size=1)
        specs = worker_specs(bounded, tmp_path, WORKERS, vary)
        admin.slowlog_reset()
        admin.config_resetstat()
        sweeper = Sweeper(AuditStore(server.client()), runs)
        peak_clients = 0

        def watch(progress: Any) -> None:
            nonlocal peak_clients
            thread = threading.Thread(target=sweeper.run, daemon=True)
            thread.start()
            while progress.value < WORKERS * ACKS_PER_WORKER:
                peak_clients = max(peak_clients, int(admin.info("clients")["connected_clients"]))
                time.sleep(0.1)
            sweeper.stop.set()
            thread.join()

        started = time.monotonic()
        report = run_workers(specs, during=watch, timeout=600)
        elapsed = time.monotonic() - started
        result = audit(store, report, runs)
        entries = admin.slowlog_get(100_000)
        slow_scripts = [
            e for e in entries if e["command"].split(b" ", 1)[0].upper() in (b"EVALSHA", b"EVAL")
        ]
        stats = command_stats(admin)
        evalsha = stats.get("evalsha", {})
        rejected = int(admin.info("stats")["rejected_connections"])
        latency = admin.info("latencystats").get("latency_percentiles_usec_evalsha", {})
        total = WORKERS * ACKS_PER_WORKER
        late = sum(o == "LATE" for acks in report.confirmed.values() for _, o, _, _ in acks)
        print(
            f"\n[load] workers={WORKERS} acks={report.confirmed_count}/{total}"
            f" stored={result.stored} lost={result.lost} duplicated={result.duplicated}"
            f" errors={len(report.errors)} LATE outcomes={late} sweeps={sweeper.passes}"
            f" marked MISSING={sweeper.marked} reconciled={sweeper.reconciled}"
            f" slowlog>{SLOW_MS}ms: scripts={len(slow_scripts)} all={len(entries)}"
            f" max={max((e['duration'] for e in entries), default=0)}us"
            f" evalsha calls={evalsha.get('calls')} usec/call={evalsha.get('usec_per_call')}"
            f" latency usec {latency}"
            f" peak clients={peak_clients} rejected connections={rejected}"
            f" elapsed={elapsed:.1f}s"
            f" ({total / elapsed:,.0f} acks/s)"
        )
        for e in entries:
            print(f"  slowlog {e['duration']}us {e['command'][:60]!r}")
        assert report.errors == []
        assert sweeper.errors == []
        assert report.confirmed_count == total
        assert (result.lost, result.duplicated, result.stored) == (0, 0, total)
        assert result.status_mismatches == []
        assert sweeper.marked > 0  # the sweeper really competed with the acks
        assert rejected == 0
    finally:
        server.cleanup()
