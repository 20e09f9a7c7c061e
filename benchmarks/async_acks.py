"""1,000 concurrent ``add_ack`` callers in one asyncio process, beside a naive loop.

:func:`figures` gives the runner ``async_vs_naive``, ``async_cpu_vs_naive`` and
``async_vs_sync``; the first's detail holds everything :func:`run` measured side by
side in one run against one server (acks/s and ratios):

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
Everything is written under the run's key prefix and cleared at the end.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio

from rac_store import AsyncAuditStore, AuditExpectation, AuditStore, DomainAck
from rac_store.scripts import Script

from .breakdown import server_cpu
from .context import Bench
from .report import Figure, Goal

CALLERS = 1000
NAIVE_CONNECTIONS = 100
"""Pool size of the naive loop (redis.asyncio's default), blocking when all are busy."""

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


async def _async_store(url: str, prefix: str, work: Work, autopipeline: bool) -> float:
    async with AsyncAuditStore.from_url(url, prefix=prefix, autopipeline=autopipeline) as store:
        return await _callers(work, store.add_ack)


async def _naive(url: str, work: Work, sync_store: AuditStore) -> float:
    pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=NAIVE_CONNECTIONS)
    client = redis.asyncio.Redis.from_pool(pool)
    sha = await client.script_load(sync_store._scripts[Script.ADD_ACKS].text)
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


class _Variants:
    """Runs variants on fresh runs, keeps their rates, clears what they wrote."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.store = AuditStore.from_url(url, prefix=prefix)
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
            pipelined = not name.endswith("unpipelined")
            seconds = asyncio.run(_async_store(self.url, self.prefix, work, pipelined))
        client_cpu = time.process_time() - client_cpu
        server_cpu = self._server_cpu() - server_cpu
        self.rates.setdefault(f"{name}_acks_per_s", []).append(acks / seconds)
        self.rates.setdefault(f"{name}_client_cpu_us_per_ack", []).append(1e6 * client_cpu / acks)
        self.rates.setdefault(f"{name}_redis_cpu_us_per_ack", []).append(1e6 * server_cpu / acks)

    def _server_cpu(self) -> float:
        return server_cpu(self.store.client)

    def close(self) -> None:
        for run in self._runs:
            self.store.clear_run(run)
        self.store.close()


def run(redis_url: str, prefix: str, quick: bool) -> dict[str, float]:
    """Every variant on ``redis_url`` under ``prefix``: acks/s, CPU µs per ack, ratios."""
    acks_each, rounds, sync_acks = (5, 1, 2_000) if quick else (20, 5, 10_000)
    variants = _Variants(redis_url, prefix)
    try:
        for name in ("naive", "async", "async_unpipelined"):  # warm-up: connections, scripts
            variants.measure(name, make_work(CALLERS, 1))
        variants.rates.clear()
        for _ in range(rounds):
            for name in ("naive", "async", "async_unpipelined"):
                variants.measure(name, make_work(CALLERS, acks_each))
            for name in ("shared_runs_naive", "shared_runs_async"):
                variants.measure(name, make_work(CALLERS, acks_each, callers_per_run=10))
            variants.measure("sync", make_work(sync_acks // acks_each, acks_each))
    finally:
        variants.close()
    found = {name: statistics.median(values) for name, values in variants.rates.items()}
    found["ratio_vs_naive"] = found["async_acks_per_s"] / found["naive_acks_per_s"]
    found["ratio_vs_sync"] = found["async_acks_per_s"] / found["sync_acks_per_s"]
    found["ratio_unpipelined_vs_naive"] = (
        found["async_unpipelined_acks_per_s"] / found["naive_acks_per_s"]
    )
    found["shared_runs_ratio_vs_naive"] = (
        found["shared_runs_async_acks_per_s"] / found["shared_runs_naive_acks_per_s"]
    )
    found["cpu_ratio_vs_naive"] = _cpu_per_ack(found, "naive") / _cpu_per_ack(found, "async")
    return found


def _cpu_per_ack(found: dict[str, float], name: str) -> float:
    """Client plus server CPU time per ack of one variant (µs)."""
    return found[f"{name}_client_cpu_us_per_ack"] + found[f"{name}_redis_cpu_us_per_ack"]


def figures(bench: Bench) -> list[Figure]:
    """The asyncio figures of one run, as ratios (rates, then CPU per ack)."""
    found = run(bench.url, bench.namespace("async"), bench.quick)
    return [
        Figure(
            "async_vs_naive",
            "asyncio, 1,000 callers: AsyncAuditStore / naive redis.asyncio",
            found["async_acks_per_s"],
            found["naive_acks_per_s"],
            "ops/s",
            Goal(">=", 5),
            found,
        ),
        Figure(
            "async_cpu_vs_naive",
            "  CPU per ack (client + server): naive / AsyncAuditStore",
            _cpu_per_ack(found, "naive"),
            _cpu_per_ack(found, "async"),
            "us",
            None,
        ),
        Figure(
            "async_vs_sync",
            "  AsyncAuditStore acks/s / sync AuditStore acks/s, one process",
            found["async_acks_per_s"],
            found["sync_acks_per_s"],
            "ops/s",
            None,
        ),
    ]
