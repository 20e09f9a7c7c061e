"""Acks/s from 8 worker processes: a 3-primary Redis Cluster beside a single node, in one run.

Self-contained: starts its own redis-server and local clusters on free loopback
ports (tests/support), declares runs spread over every shard, and lets 8 spawned
processes ack them one ``add_ack`` at a time after a common start signal. The
figure is total acks / wall time from the signal to the last worker's end.

    python -m benchmarks.cluster_bench [--quick] [--json out.json]

``run(quick)`` returns the figures as a dict (for the ``rac-store bench`` runner).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from rac_store import AuditExpectation, AuditStore, create_domain_ack
from tests.support.cluster import LocalCluster
from tests.support.redis_server import RedisServer

PROCESSES = 8
RUNS = 64
"""Runs in flight; 64 runs spread over the default 16 shards, so over every primary."""


def _worker(url: str, jobs: Sequence[tuple[str, str]], ready: Any, go: Any, out: Any) -> None:
    store = AuditStore.from_url(url, prefix="bench", metrics=False)
    acks = [(run, create_domain_ack(uuid.UUID(run), "d", action)) for run, action in jobs]
    ready.release()
    go.wait()
    for run, ack in acks:
        store.add_ack(run, ack)
    out.put(time.monotonic())
    store.close()


def _plan(store: AuditStore, acks: int) -> list[tuple[str, str]]:
    """Declare RUNS runs with ``acks / RUNS`` expectations each; the acks, interleaved."""
    per_run = max(1, acks // RUNS)
    runs = [str(uuid.uuid4()) for _ in range(RUNS)]
    for run in runs:
        rid = uuid.UUID(run)
        for start in range(0, per_run, 500):
            batch = range(start, min(per_run, start + 500))
            store.add_expectations(
                run, [AuditExpectation(rid, "d", f"a{i}", 3_600_000) for i in batch]
            )
    return [(run, f"a{i}") for i in range(per_run) for run in runs]


def _cpu_seconds(ports: Sequence[int]) -> list[float]:
    """CPU seconds (user + sys) each server on ``ports`` has used so far."""
    used = []
    for port in ports:
        with redis.Redis(host="127.0.0.1", port=port) as node:
            info = node.info("cpu")
        used.append(float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))
    return used


def measure(url: str, ports: Sequence[int], acks: int, processes: int = PROCESSES) -> Sample:
    """``processes`` workers send ``acks`` acks in total to ``url`` (primaries on ``ports``)."""
    store = AuditStore.from_url(url, prefix="bench", metrics=False)
    jobs = _plan(store, acks)
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, jobs[i::processes], ready, go, out))
        for i in range(processes)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        if not ready.acquire(timeout=60):
            raise RuntimeError("a worker did not start")
    cpu_before = _cpu_seconds(ports)
    started = time.monotonic()
    go.set()
    ends = [out.get(timeout=600) for _ in procs]
    cpu = [after - before for after, before in zip(_cpu_seconds(ports), cpu_before, strict=True)]
    for proc in procs:
        proc.join(60)
        if proc.exitcode != 0:
            raise RuntimeError(f"a worker exited with {proc.exitcode}")
    stored = sum(len(store.get_acks(run)) for run in {run for run, _ in jobs})
    if stored != len(jobs):
        raise RuntimeError(f"{len(jobs)} acks sent, {stored} stored")
    store.close()
    return Sample(len(jobs) / (max(ends) - started), max(cpu) / len(jobs) * 1e6)


@dataclass(frozen=True)
class Sample:
    """One measurement."""

    acks_per_second: float
    busiest_server_cpu_us_per_ack: float
    """CPU time of the busiest primary per ack sent to the whole setup (microseconds)."""


@contextlib.contextmanager
def _single_node() -> Iterator[tuple[str, list[int]]]:
    server = RedisServer().start()
    try:
        yield server.url, [server.port]
    finally:
        server.cleanup()


@contextlib.contextmanager
def _cluster(replicas: int) -> Iterator[tuple[str, list[int]]]:
    cluster = LocalCluster(primaries=3, replicas=replicas).start()
    try:
        yield cluster.url, cluster.primary_ports()
    finally:
        cluster.cleanup()


Setup = Callable[[], contextlib.AbstractContextManager[tuple[str, list[int]]]]


def run(quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every setup side by side; the figures and their ratios to the single node.

    ``acks_per_second`` is what 8 client processes reach; on a small machine the
    clients' own CPU limits it. ``server_cpu_us_per_ack`` is the busiest primary's CPU
    time per ack: how much server capacity one ack costs where it is scarcest, so
    ``capacity_ratio`` (single node's cost / the setup's) is the server throughput
    the setup could reach relative to one node when clients are not the limit.
    """
    acks = 4_000 if quick else 40_000
    rounds = 1 if quick else 3
    setups: list[tuple[str, Setup]] = [
        ("single node", _single_node),
        ("cluster 3 primaries", lambda: _cluster(0)),
    ]
    if not quick:
        setups.append(("cluster 3 primaries + 3 replicas", lambda: _cluster(1)))
    rates: dict[str, float] = {}
    costs: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        started = [(name, *stack.enter_context(start())) for name, start in setups]
        for round_no in range(rounds):  # interleaved rounds; the best of each is kept
            for name, url, ports in started:
                sample = measure(url, ports, acks)
                rates[name] = max(rates.get(name, 0.0), sample.acks_per_second)
                cost = sample.busiest_server_cpu_us_per_ack
                costs[name] = min(costs.get(name, cost), cost)
                progress(
                    f"  round {round_no + 1}/{rounds}  {name:<34} "
                    f"{sample.acks_per_second:>9,.0f} acks/s  "
                    f"busiest primary {cost:6.1f} us CPU/ack"
                )
    return {
        "processes": PROCESSES,
        "acks_per_round": acks,
        "rounds": rounds,
        "acks_per_second": rates,
        "ratio_to_single_node": {name: rate / rates["single node"] for name, rate in rates.items()},
        "server_cpu_us_per_ack": costs,
        "capacity_ratio": {name: costs["single node"] / cost for name, cost in costs.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one short round (under a minute)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    print(f"cluster benchmark: {PROCESSES} processes, add_ack one at a time")
    figures = run(args.quick)
    print()
    print(f"{'setup':<34} {'acks/s':>9} {'ratio':>6}   {'us CPU/ack':>10} {'capacity':>8}")
    for name, rate in figures["acks_per_second"].items():
        ratio = figures["ratio_to_single_node"][name]
        cost = figures["server_cpu_us_per_ack"][name]
        capacity = figures["capacity_ratio"][name]
        print(f"{name:<34} {rate:>9,.0f} {ratio:>5.2f}x   {cost:>10.1f} {capacity:>7.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
