"""Benchmark: 1,000 concurrent ``add_ack`` callers in one asyncio process.

Figures, measured side by side in one run on one server:

* ``async_acks_per_s``: AsyncAuditStore with auto-pipelining (the default);
* ``naive_acks_per_s``: a plain ``redis.asyncio`` loop, one EVALSHA of the same
  script with the same arguments per await, same concurrency;
* ``async_unpipelined_acks_per_s``: AsyncAuditStore(autopipeline=False);
* ``sync_acks_per_s``: the sync AuditStore acking in a loop, one process;
* ``ratio_vs_naive`` (goal >= 5) and ``ratio_vs_sync``.

Every caller acks its own run's declared expectations, so each ack is RECORDED.
Acks are built before the clock starts; validation and encoding are timed in
every variant. Rounds alternate the variants and the median of each is kept.

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

import redis
import redis.asyncio

from rac_store import AsyncAuditStore, AuditExpectation, AuditStore, DomainAck

CALLERS = 1000
NAIVE_CONNECTIONS = 100
"""Pool size of the naive loop (redis.asyncio's default), blocking when all are busy."""
PREFIX = "bench-async"

Work = list[tuple[uuid.UUID, list[DomainAck]]]


def _work(callers: int, acks_each: int) -> Work:
    """One fresh run per caller with ``acks_each`` acks of distinct actions."""
    work = []
    for _ in range(callers):
        run = uuid.uuid4()
        work.append((run, [DomainAck(run, "bench", f"a{j}") for j in range(acks_each)]))
    return work


def _declare(store: AuditStore, work: Work) -> None:
    for run, acks in work:
        store.add_expectations(run, [AuditExpectation(run, "bench", a.action, 600_000) for a in acks])


async def _callers(work: Work, ack: Callable[[uuid.UUID, DomainAck], Awaitable[Any]]) -> float:
    """Seconds for every caller to send its acks one await after another."""

    async def caller(run: uuid.UUID, acks: list[DomainAck]) -> None:
        for item in acks:
            await ack(run, item)

    start = time.perf_counter()
    await asyncio.gather(*(caller(run, acks) for run, acks in work))
    return time.perf_counter() - start


async def _async_store(url: str, work: Work, autopipeline: bool) -> float:
    store = AsyncAuditStore.from_url(url, prefix=PREFIX, autopipeline=autopipeline)
    async with store:
        return await _callers(work, store.add_ack)


async def _naive(url: str, work: Work, core_store: AuditStore) -> float:
    pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=NAIVE_CONNECTIONS)
    client = redis.asyncio.Redis.from_pool(pool)
    script = core_store._scripts["add_acks"]
    sha = await client.script_load(script.script)
    build = core_store.core.add_ack

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


def run(redis_url: str, quick: bool) -> dict[str, float]:
    """Measure every variant on the server at ``redis_url``; figures in acks/s and ratios."""
    acks_each = 10 if quick else 40
    rounds = 1 if quick else 3
    sync_acks = 5_000 if quick else 20_000
    store = AuditStore.from_url(redis_url, prefix=PREFIX)
    rates: dict[str, list[float]] = {"async": [], "naive": [], "async_unpipelined": [], "sync": []}
    runs: list[uuid.UUID] = []
    try:
        for _ in range(rounds):
            for name in ("naive", "async", "async_unpipelined"):
                work = _work(CALLERS, acks_each)
                runs += [r for r, _ in work]
                _declare(store, work)
                if name == "naive":
                    seconds = asyncio.run(_naive(redis_url, work, store))
                else:
                    seconds = asyncio.run(_async_store(redis_url, work, name == "async"))
                rates[name].append(CALLERS * acks_each / seconds)
            work = _work(sync_acks // acks_each, acks_each)
            runs += [r for r, _ in work]
            _declare(store, work)
            rates["sync"].append(sync_acks / _sync(store, work))
    finally:
        for run_id in runs:
            store.clear_run(run_id)
        store.close()
    result = {f"{name}_acks_per_s": statistics.median(values) for name, values in rates.items()}
    result["ratio_vs_naive"] = result["async_acks_per_s"] / result["naive_acks_per_s"]
    result["ratio_vs_sync"] = result["async_acks_per_s"] / result["sync_acks_per_s"]
    result["ratio_unpipelined_vs_naive"] = (
        result["async_unpipelined_acks_per_s"] / result["naive_acks_per_s"]
    )
    return result


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.support.redis_server import running_redis

    with running_redis() as server:
        yield server.url


def main(argv: list[str] | None = None) -> int:
    """Print the figures (and the goal) for a run of this benchmark."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.async_acks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer acks and one round")
    parser.add_argument("--redis-url", help="use this server instead of starting one")
    args = parser.parse_args(argv)
    with _server(args.redis_url) as url:
        figures = run(url, args.quick)
    for name, value in figures.items():
        print(f"{name:32} {value:12.2f}")
    verdict = "met" if figures["ratio_vs_naive"] >= 5 else "NOT met"
    print(f"goal ratio_vs_naive >= 5: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
