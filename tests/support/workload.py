"""Multi-process ack load for the reliability tests, and the checks that nothing was
lost or duplicated.

Workers are real processes (spawn). Each writes one line per ack whose call
*returned success* to its own file; the checks compare those files with what
the server holds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

from rac_store import (
    AckStatus,
    AsyncAuditStore,
    AuditExpectation,
    AuditStatus,
    AuditStore,
    DomainAck,
    RetryPolicy,
)
from rac_store.errors import RACStoreError

DECLARED = 12
"""Expectations per run: d0..d11 / act; acks also go to d12..d15 (drift)."""
TARGETS = 16
RARE = 8
"""Also declared per run: rare0..rare7 / act, due at spread times, seldom acked (so
their acks, their deadlines and a sweeper meet at random moments of a load)."""
RARE_SHARE = 0.002
SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker process does."""

    url: str
    runs: list[str]
    acks: int
    out: str = ""
    batch: int = 1
    seed: int = 0
    socket_timeout: float | None = 5.0
    retry: tuple[int, float, float] = (4, 0.05, 1.0)
    pool_size: int | None = None
    prefix: str = "rac"
    wait_aof: bool = False
    concurrency: int = 0
    """> 0: an AsyncAuditStore (auto-pipelined add_ack) with this many concurrent callers."""
    cpus: frozenset[int] | None = None
    """Run the worker on these CPUs only (keeps a core free for the server)."""


@dataclass
class LoadReport:
    """What the workers confirmed, and the errors they saw."""

    confirmed: dict[str, list[tuple[str, str, str, bool]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def confirmed_count(self) -> int:
        return sum(len(acks) for acks in self.confirmed.values())


def declare(store: AuditStore, runs: list[str], deadline_ms: int = 600_000) -> None:
    """Declare DECLARED common and RARE rare expectations on each run.

    The rare ones fall due between 1 and 20 s from now, whatever ``deadline_ms``.
    """
    rng = random.Random(0)
    for run in runs:
        common = [
            AuditExpectation(uuid.UUID(run), f"d{i}", "act", deadline_ms) for i in range(DECLARED)
        ]
        rare = [
            AuditExpectation(uuid.UUID(run), f"rare{i}", "act", rng.randrange(1_000, 20_000))
            for i in range(RARE)
        ]
        store.add_expectations(run, common + rare)


def start_runs(store: AuditStore, count: int, deadline_ms: int = 600_000) -> list[str]:
    """``count`` new runs, each with its expectations declared (see :func:`declare`)."""
    runs = [str(uuid.uuid4()) for _ in range(count)]
    declare(store, runs, deadline_ms)
    return runs


def worker_specs(
    template: WorkerSpec, folder: Path, count: int, vary: Callable[[int], dict[str, Any]]
) -> list[WorkerSpec]:
    """``count`` workers like ``template``, each with its own log, seed and ``vary(i)`` options."""
    return [
        dataclasses.replace(template, out=str(folder / f"worker{i}.log"), seed=i, **vary(i))
        for i in range(count)
    ]


def _client(spec: WorkerSpec) -> redis.Redis:
    if spec.pool_size is None:
        return redis.Redis.from_url(spec.url, socket_timeout=spec.socket_timeout)
    pool = redis.BlockingConnectionPool.from_url(
        spec.url, max_connections=spec.pool_size, timeout=10, socket_timeout=spec.socket_timeout
    )
    return redis.Redis(connection_pool=pool)


def _random_ack(rng: random.Random, run: str) -> DomainAck:
    status = AckStatus.SUCCESS if rng.random() < 0.8 else AckStatus.FAILED
    if rng.random() < RARE_SHARE:
        domain = f"rare{rng.randrange(RARE)}"
    else:
        domain = f"d{rng.randrange(TARGETS)}"
    return DomainAck(uuid.UUID(run), domain, "act", status=status)


def _line(run: str, ack: DomainAck, outcome: Any) -> str:
    return f"A\t{run}\t{ack.id.hex}\t{outcome.value}\t{ack.domain}\t{ack.is_success:d}\n"


def _error_line(exc: BaseException) -> str:
    return f"E\t{type(exc).__name__}: {exc}\n"


def ack_worker(spec: WorkerSpec, progress: Any) -> None:
    """Send ``spec.acks`` acks round-robin over ``spec.runs``; log each confirmed one."""
    if spec.cpus:
        os.sched_setaffinity(0, spec.cpus)
    if spec.concurrency:
        asyncio.run(_async_ack_worker(spec, progress))
        return
    rng = random.Random(spec.seed)
    attempts, base, cap = spec.retry
    store = AuditStore(
        _client(spec),
        prefix=spec.prefix,
        retry=RetryPolicy(attempts, base, cap),
        wait_aof=spec.wait_aof,
    )
    sent = 0
    with open(spec.out, "w", encoding="utf-8") as out:
        while sent < spec.acks:
            run = spec.runs[(sent // spec.batch) % len(spec.runs)]
            n = min(spec.batch, spec.acks - sent)
            batch = [_random_ack(rng, run) for _ in range(n)]
            sent += n
            try:
                if spec.batch == 1:
                    outcomes = [store.add_ack(run, batch[0])]
                else:
                    outcomes = store.add_acks(run, batch)
            except (RACStoreError, redis.RedisError) as exc:
                out.write(_error_line(exc))
                continue
            out.writelines(_line(run, a, o) for a, o in zip(batch, outcomes, strict=True))
            with progress.get_lock():
                progress.value += n
    store.close()


async def _async_ack_worker(spec: WorkerSpec, progress: Any) -> None:
    """``spec.concurrency`` coroutines share ``spec.acks`` auto-pipelined add_ack calls."""
    rng = random.Random(spec.seed)
    attempts, base, cap = spec.retry
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        spec.url,
        max_connections=spec.pool_size or 64,
        timeout=10,
        socket_timeout=spec.socket_timeout,
    )
    client = redis.asyncio.Redis.from_pool(pool)
    lines: list[str] = []
    todo = iter(range(spec.acks))

    async def caller(store: AsyncAuditStore) -> None:
        for i in todo:
            run = spec.runs[i % len(spec.runs)]
            ack = _random_ack(rng, run)
            try:
                lines.append(_line(run, ack, await store.add_ack(run, ack)))
            except (RACStoreError, redis.RedisError) as exc:
                lines.append(_error_line(exc))
            with progress.get_lock():
                progress.value += 1

    retry = RetryPolicy(attempts, base, cap)
    async with AsyncAuditStore(client, prefix=spec.prefix, retry=retry) as store:
        await asyncio.gather(*(caller(store) for _ in range(spec.concurrency)))
    Path(spec.out).write_text("".join(lines), encoding="utf-8")


def run_workers(
    specs: list[WorkerSpec], *, during: Any = None, timeout: float = 300.0
) -> LoadReport:
    """Start one process per spec; call ``during(progress)`` meanwhile; collect the logs."""
    progress = SPAWN.Value("q", 0)
    procs = [SPAWN.Process(target=ack_worker, args=(spec, progress)) for spec in specs]
    for proc in procs:
        proc.start()
    try:
        if during is not None:
            during(progress)
        deadline = time.monotonic() + timeout
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
    report = LoadReport()
    for spec, proc in zip(specs, procs, strict=True):
        if proc.exitcode != 0:
            report.errors.append(f"worker {spec.out} exited with {proc.exitcode}")
        for line in Path(spec.out).read_text(encoding="utf-8").splitlines():
            kind, *rest = line.split("\t")
            if kind == "E":
                report.errors.append(rest[0])
            else:
                run, ack_id, outcome, domain, ok = rest
                report.confirmed.setdefault(run, []).append((ack_id, outcome, domain, ok == "1"))
    return report


@dataclass
class Audit:
    """What the server holds compared with what the workers confirmed."""

    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    unconfirmed_but_stored: int = 0
    status_mismatches: list[str] = field(default_factory=list)


def audit(store: AuditStore, report: LoadReport, runs: list[str]) -> Audit:
    """Count lost, duplicated and unconfirmed acks; check every status follows the acks."""
    result = Audit()
    raw = store.client
    for run in runs:
        acks = store.get_acks(run)
        ids = Counter(ack.id.hex for ack in acks)
        result.stored += len(acks)
        result.duplicated += sum(count - 1 for count in ids.values())
        result.duplicated += abs(int(raw.hlen(store.core.keys.for_run(run)[5])) - len(ids))
        confirmed = {ack_id for ack_id, *_ in report.confirmed.get(run, [])}
        result.lost += len(confirmed - ids.keys())
        result.unconfirmed_but_stored += len(ids.keys() - confirmed)
        result.status_mismatches += _status_mismatches(store, run, acks)
    return result


def _status_mismatches(store: AuditStore, run: str, acks: list[DomainAck]) -> list[str]:
    """Each expectation's status must be what its stored acks make it."""
    succeeded = {ack.domain for ack in acks if ack.is_success}
    failed = {ack.domain for ack in acks if not ack.is_success}
    wrong = []
    for exp in store.get_expectations(run):
        if exp.domain in succeeded:
            expected = {AuditStatus.ACKED}
        elif exp.domain in failed:
            expected = {AuditStatus.FAILED}
        else:
            expected = {AuditStatus.PENDING, AuditStatus.MISSING}
        if exp.status not in expected:
            wrong.append(f"{run} {exp.domain}: {exp.status} not in {expected}")
    return wrong
