"""Benchmark: 1,000 concurrent ``add_ack`` callers in one asyncio process.

Figures, measured side by side in one run against one server (acks/s and ratios):

* ``async_acks_per_s``: AsyncAuditStore with auto-pipelining (the default);
* ``naive_acks_per_s``: a plain ``redis.asyncio`` loop with the same concurrency,
  one EVALSHA of the same script with the same arguments per await (on a
  blocking pool of redis.asyncio's default 100 connections);
* ``async_unpipelined_acks_per_s``: AsyncAuditStore(autopipeline=False);
* ``sync_acks_per_s``: the sync AuditStore acking in a loop in one process;
* ``ratio_vs_naive`` (goal >= 5) and ``ratio_vs_sync``;
* per variant, the CPU time per ack of this process and of redis-server, and
  ``cpu_ratio_vs_naive`` (naive's client + server CPU per ack / the auto-pipelined
  store's): less sensitive than rates to other load on a shared machine.

Workload: every caller acks its own run's declared expectations, one ack after
another, so each ack is RECORDED and no two callers share a run (the case that
coalesces least, as every run in a batch pays its own bookkeeping). The
``shared_runs_*`` figures repeat async and naive with ten callers per run.
Acks are built before the clock starts; validation and encoding are timed in
every variant. Rounds alternate the variants; each figure is the median.

``python -m benchmarks.async_acks [--quick] [--redis-url URL]`` starts its own
redis-server on a free port unless given a URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import redis.asyncio

from rac_store import AsyncAuditStore, AuditExpectation, AuditStore, DomainAck

CALLERS = 1000
NAIVE_CONNECTIONS = 100
"""Pool size of the naive loop (redis.asyncio's default), blocking when all are busy."""
PREFIX = "bench-async"

Work = list[tuple[uuid.UUID, list[DomainAck]]]
Ack = Callable[[uuid.UUID, DomainAck], Awaitable[Any]]


def make_work(callers: int, acks_each: int, callers_per_run: int = 1) -> Work:
    """Per caller: its run and ``acks_each`` acks of actions no other caller acks."""
    runs = [uuid.uuid4() for _ in range(-(-callers // callers_per_run))]
    work = []
    for i in range(callers):
        run = runs[i // callers_per_run]
        work.append((run, [DomainAck(run, "bench", f"c{i}a{j}") for j in range(acks_each)]))
    return work


def declare(store: AuditStore, work: Work) -> None:
    """Declare every action the work will ack (60 s deadlines: all on time)."""
    for run, acks in work:
        expectations = [AuditExpectation(run, "bench", a.action, 60_000) for a in acks]
        store.add_expectations(run, expectations)


async def _callers(work: Work, ack: Ack) -> float:
    """Seconds for every caller to send its acks, one await after another."""

    async def caller(run: uuid.UUID, acks: list[DomainAck]) -> None:
        for item in acks:
            await ack(run, item)

    start = time.perf_counter()
    await asyncio.gather(*(caller(run, acks) for run, acks in work))
    return time.perf_counter() - start


async def _async_store(url: str, work: Work, autopipeline: bool) -> float:
    async with AsyncAuditStore.from_url(url, prefix=PREFIX, autopipeline=autopipeline) as store:
        return await _callers(work, store.add_ack)


async def _naive(url: str, work: Work, sync_store: AuditStore) -> float:
    pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=NAIVE_CONNECTIONS)
    client = redis.asyncio.Redis.from_pool(pool)
    sha = await client.script_load(sync_store._scripts["add_acks"].script)
    build = sync_store.core.add_ack

    async def ack(run: uuid.UUID, item: DomainAck) -> Any:
        call = build(run, item)
        return await client.evalsha(sha, len(call.keys), *call.keys, *call.args)

    try:
        return await _callers(work, ack)
    finally:
        await client.aclose()


def _sync(store: AuditStore, work: Work) -> float:
    start = time.perf_counter()
    for run, acks in work:
        for item in acks:
            store.add_ack(run, item)
    return time.perf_counter() - start


class _Bench:
    """Runs variants on fresh runs, keeps their rates, clears what they wrote."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.store = AuditStore.from_url(url, prefix=PREFIX)
        self.rates: dict[str, list[float]] = {}
        self._runs: set[uuid.UUID] = set()

    def measure(self, name: str, work: Work) -> None:
        self._runs.update(run for run, _ in work)
        declare(self.store, work)
        acks = sum(len(acks) for _, acks in work)
        server_cpu, client_cpu = self._server_cpu(), time.process_time()
        if name.endswith("naive"):
            seconds = asyncio.run(_naive(self.url, work, self.store))
        elif name == "sync":
            seconds = _sync(self.store, work)
        else:
            seconds = asyncio.run(_async_store(self.url, work, not name.endswith("unpipelined")))
        client_cpu = time.process_time() - client_cpu
        server_cpu = self._server_cpu() - server_cpu
        self.rates.setdefault(f"{name}_acks_per_s", []).append(acks / seconds)
        self.rates.setdefault(f"{name}_client_cpu_us_per_ack", []).append(1e6 * client_cpu / acks)
        self.rates.setdefault(f"{name}_redis_cpu_us_per_ack", []).append(1e6 * server_cpu / acks)

    def _server_cpu(self) -> float:
        cpu = self.store.client.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    def close(self) -> None:
        for run in self._runs:
            self.store.clear_run(run)
        self.store.close()


def run(redis_url: str, quick: bool) -> dict[str, float]:
    """Measure every variant on the server at ``redis_url``; figures in acks/s and ratios."""
    acks_each, rounds, sync_acks = (5, 1, 2_000) if quick else (20, 5, 10_000)
    bench = _Bench(redis_url)
    try:
        for name in ("naive", "async", "async_unpipelined"):  # warm-up: connections, scripts
            bench.measure(name, make_work(CALLERS, 1))
        bench.rates.clear()
        for _ in range(rounds):
            for name in ("naive", "async", "async_unpipelined"):
                bench.measure(name, make_work(CALLERS, acks_each))
            for name in ("shared_runs_naive", "shared_runs_async"):
                bench.measure(name, make_work(CALLERS, acks_each, callers_per_run=10))
            bench.measure("sync", make_work(sync_acks // acks_each, acks_each))
    finally:
        bench.close()
    figures = {name: statistics.median(values) for name, values in bench.rates.items()}
    figures["ratio_vs_naive"] = figures["async_acks_per_s"] / figures["naive_acks_per_s"]
    figures["ratio_vs_sync"] = figures["async_acks_per_s"] / figures["sync_acks_per_s"]
    figures["ratio_unpipelined_vs_naive"] = (
        figures["async_unpipelined_acks_per_s"] / figures["naive_acks_per_s"]
    )
    figures["shared_runs_ratio_vs_naive"] = (
        figures["shared_runs_async_acks_per_s"] / figures["shared_runs_naive_acks_per_s"]
    )
    figures["cpu_ratio_vs_naive"] = _cpu_per_ack(figures, "naive") / _cpu_per_ack(figures, "async")
    return figures


def _cpu_per_ack(figures: dict[str, float], name: str) -> float:
    """Client plus server CPU time per ack of one variant (µs)."""
    return figures[f"{name}_client_cpu_us_per_ack"] + figures[f"{name}_redis_cpu_us_per_ack"]


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.support.redis_server import running_redis

    with running_redis() as server:
        yield server.url


def main(argv: list[str] | None = None) -> int:
    """Print the figures, and the goal, of one run of this benchmark."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.async_acks",
        description="1,000 concurrent add_ack callers: auto-pipelined vs naive vs sync.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer acks and rounds")
    parser.add_argument("--redis-url", help="use this server instead of starting one")
    args = parser.parse_args(argv)
    with _server(args.redis_url) as url:
        figures = run(url, args.quick)
    for name, value in figures.items():
        print(f"{name:40} {value:12.2f}")
    verdict = "met" if figures["ratio_vs_naive"] >= 5 else "NOT met"
    print(f"goal ratio_vs_naive >= 5: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
