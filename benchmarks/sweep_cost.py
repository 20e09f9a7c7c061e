"""The deadline sweep's cost per due run: wall time, server time and Redis commands.

Starts its own redis-server on a free port (it flushes that server between
measurements, so it takes no --redis-url: it never touches data you keep), declares RUNS runs whose
expectations are overdue, sweeps them all (``--limit`` runs per call), and
reads ``INFO commandstats``. After every sweep call it sends as many PINGs on
the same connection as the call swept runs, so that the ratio compares two
figures taken side by side on a noisy machine. The embedded backend is timed
the same way.

    .venv/bin/python benchmarks/sweep_cost.py [--runs 2000] [--marks 1 4] [--limit 100]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rac_store import AuditExpectation, AuditStore
from rac_store.embedded import create_embedded_client
from rac_store.reconciler import AuditReconciler
from tests.support.redis_server import RedisServer


def prepare(store: AuditStore, runs: int, marks: int) -> None:
    """``runs`` runs, each with ``marks`` overdue expectations and one not due."""
    for _ in range(runs):
        run = uuid.uuid4()
        exps = [AuditExpectation(run, "d", f"late{i}", 0) for i in range(marks)]
        exps.append(AuditExpectation(run, "d", "later", 600_000))
        store.add_expectations(run, exps)
    time.sleep(0.01)


def sweep_all(rec: AuditReconciler, client: Any, limit: int) -> dict[str, float]:
    """Sweep until nothing is due, with one PING per swept run after each call."""
    sweep_s = ping_s = 0.0
    runs = calls = pings = 0
    while True:
        started = time.perf_counter()
        report = rec.sweep(limit=limit)
        sweep_s += time.perf_counter() - started
        runs += report.runs_swept
        calls += 1
        started = time.perf_counter()
        for _ in range(max(report.runs_swept, 1)):
            client.ping()
        ping_s += time.perf_counter() - started
        pings += max(report.runs_swept, 1)
        if not report.more_due:
            return {
                "runs": runs,
                "calls": calls,
                "us_per_run": sweep_s / runs * 1e6,
                "ping_us": ping_s / pings * 1e6,
            }


def measure(client: Any, runs: int, marks: int, limit: int) -> dict[str, Any]:
    """Prepare, sweep and count for one backend."""
    client.flushall()
    store = AuditStore(client, metrics=False)
    rec = AuditReconciler(store, metrics=False)
    prepare(store, runs, marks)
    embedded = type(client).__module__.startswith("fakeredis")
    if not embedded:
        client.config_resetstat()
    row: dict[str, Any] = sweep_all(rec, client, limit)
    assert row["runs"] == runs, (row, runs)
    if not embedded:
        stats = {k.removeprefix("cmdstat_"): v for k, v in client.info("commandstats").items()}
        for name in ("config|resetstat", "info", "ping"):
            stats.pop(name, None)
        calls = {k: int(v["calls"]) for k, v in stats.items()}
        row["commands_per_run"] = sum(calls.values()) / runs
        row["evalsha_per_run"] = calls.get("evalsha", 0) / runs
        row["script_us"] = float(stats["evalsha"]["usec_per_call"])
        row["breakdown"] = {k: round(v / runs, 2) for k, v in sorted(calls.items())}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--marks", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    server = RedisServer().start()
    client = server.client()
    try:
        version = client.info("server")["redis_version"]
        print(f"redis-server {version}, {args.runs} due runs, sweep(limit={args.limit})")
        for marks in args.marks:
            real = measure(client, args.runs, marks, args.limit)
            emb = measure(create_embedded_client(), args.runs, marks, args.limit)
            print(
                f"\n{marks} overdue expectation(s) per run:"
                f"\n  redis     {real['us_per_run']:7.1f} us per due run"
                f" = {real['us_per_run'] / real['ping_us']:.2f} x PING"
                f" ({real['ping_us']:.1f} us, interleaved);"
                f" script {real['script_us']:.1f} us of server time;"
                f" {real['commands_per_run']:.2f} commands per run"
                f" ({real['evalsha_per_run']:.2f} EVALSHA; {real['calls']} sweep calls)"
                f"\n  embedded  {emb['us_per_run']:7.1f} us per due run"
                f" = {emb['us_per_run'] / emb['ping_us']:.2f} x its PING ({emb['ping_us']:.1f} us)"
                f"\n  commands per run: {real['breakdown']}"
            )
    finally:
        client.close()
        server.cleanup()


if __name__ == "__main__":
    main()
