"""Acks/s from 8 worker processes: a 3-primary Redis Cluster beside a single node, in one run.

It starts a fresh single node and local clusters of its own (:mod:`benchmarks.servers`,
also when the run was given ``--redis-url``), declares runs spread over every shard,
and lets 8 spawned processes ack them one ``add_ack`` at a time after a common start
signal. A rate is total acks / wall time from the signal to the last worker's end.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from rac_store import AuditExpectation, AuditStore, create_domain_ack

from . import servers
from .context import Bench
from .report import Figure, say

PROCESSES = 8
RUNS = 64
"""Runs in flight; 64 runs spread over the default 16 shards, so over every primary."""
SINGLE = "single node"


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


Setup = tuple[str, str, list[int]]
"""(name, URL, the primaries' ports)."""


def _setups(stack: contextlib.ExitStack, quick: bool) -> list[Setup]:
    """Start a single node and the clusters the run compares (stopped with ``stack``)."""
    node = stack.enter_context(servers.redis_server())
    started = [(SINGLE, node.url, [node.port])]
    replicas = (0,) if quick else (0, 1)
    for count in replicas:
        cluster = stack.enter_context(servers.local_cluster(replicas=count))
        name = "cluster 3 primaries" + (" + 3 replicas" if count else "")
        started.append((name, cluster.url, cluster.primary_ports()))
    return started


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
    rates: dict[str, float] = {}
    costs: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        started = _setups(stack, quick)
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
        "ratio_to_single_node": {name: rate / rates[SINGLE] for name, rate in rates.items()},
        "server_cpu_us_per_ack": costs,
        "capacity_ratio": {name: costs[SINGLE] / cost for name, cost in costs.items()},
    }


def figures(bench: Bench) -> list[Figure]:
    """For each cluster: acks/s over the single node's, and the busiest node's CPU per ack."""
    found = run(bench.quick, progress=lambda line: say(f"    {line.strip()}"))
    rates, costs = found["acks_per_second"], found["server_cpu_us_per_ack"]
    result: list[Figure] = []
    for name in [name for name in rates if name != SINGLE]:
        slug = re.sub(r"\W+", "_", name).strip("_")
        setup = name.removeprefix("cluster ")
        result += [
            Figure(
                f"{slug}_rate",
                f"8 processes: acks/s, cluster ({setup}) / one node",
                rates[name],
                rates[SINGLE],
                "ops/s",
                None,
                found,
            ),
            Figure(
                f"{slug}_capacity",
                f"  busiest node's CPU per ack: one node / cluster ({setup})",
                costs[SINGLE],
                costs[name],
                "us",
                None,
            ),
        ]
    return result
