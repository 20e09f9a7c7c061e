"""The deadline sweep's cost per due run: wall time and Redis commands.

Starts its own redis-server on a free port (or uses --redis-url, which it
FLUSHES: never point it at data you keep), declares RUNS runs whose
expectations are overdue, then sweeps them all and reads ``INFO commandstats``.
Also times the same sweep on the embedded backend.

    .venv/bin/python benchmarks/sweep_cost.py [--runs 2000] [--marks 1 4]
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


def sweep_all(rec: AuditReconciler, limit: int) -> tuple[float, int, int]:
    """Sweep until nothing is due; (seconds, runs swept, sweep calls)."""
    started, runs, calls = time.perf_counter(), 0, 0
    while True:
        report = rec.sweep(limit=limit)
        runs += report.runs_swept
        calls += 1
        if not report.more_due:
            return time.perf_counter() - started, runs, calls


def commandstats(client: Any) -> dict[str, int]:
    return {
        k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()
    }


def ping_us(client: Any, n: int = 2000) -> float:
    """Mean PING round trip on the same connection, in microseconds."""
    started = time.perf_counter()
    for _ in range(n):
        client.ping()
    return (time.perf_counter() - started) / n * 1e6


def measure(client: Any, runs: int, marks: int, limit: int) -> dict[str, Any]:
    client.flushall()
    store = AuditStore(client, metrics=False)
    rec = AuditReconciler(store, metrics=False)
    prepare(store, runs, marks)
    embedded = type(client).__module__.startswith("fakeredis")
    if not embedded:
        client.config_resetstat()
    seconds, swept, calls = sweep_all(rec, limit)
    assert swept == runs, (swept, runs)
    row: dict[str, Any] = {"us_per_run": seconds / runs * 1e6, "sweep_calls": calls}
    if not embedded:
        stats = commandstats(client)
        stats.pop("config|resetstat", None)
        stats.pop("info", None)
        row["commands_per_run"] = sum(stats.values()) / runs
        row["evalsha_per_run"] = stats.get("evalsha", 0) / runs
        row["breakdown"] = {k: round(v / runs, 2) for k, v in sorted(stats.items())}
    row["ping_us"] = ping_us(client)  # after the command counts: PINGs are not the sweep's
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--marks", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    server = None
    if args.redis_url:
        import redis

        client = redis.Redis.from_url(args.redis_url)
    else:
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
                f"\n  redis     {real['us_per_run']:8.1f} us per due run"
                f" = {real['us_per_run'] / real['ping_us']:.2f} x PING ({real['ping_us']:.1f} us),"
                f" {real['commands_per_run']:.2f} Redis commands per run"
                f" ({real['evalsha_per_run']:.2f} EVALSHA per run,"
                f" {real['sweep_calls']} sweep calls)"
                f"\n  embedded  {emb['us_per_run']:8.1f} us per due run"
                f" = {emb['us_per_run'] / emb['ping_us']:.2f} x its PING ({emb['ping_us']:.1f} us)"
                f"\n  commands per run: {real['breakdown']}"
            )
    finally:
        client.close()
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
