"""A gang of worker processes (spawn context) that start timed loops together.

The processes start once and serve every multi-process figure. For each task,
every worker prepares (connects, builds its acks), waits at a barrier so all
start at once, runs its loop, and reports (monotonic start, end, operations).
Throughput is all operations over the span from the first start to the last end.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from rac_store import AuditStore, create_domain_ack

from .baseline import LegacyAuditStore
from .workload import ack_for

BARRIER_TIMEOUT = 120.0


@dataclass(frozen=True)
class Task:
    """One worker's share of a timed loop."""

    kind: str
    url: str
    prefix: str
    runs: tuple[str, ...]
    count: int
    worker: int


@dataclass(frozen=True)
class Outcome:
    """What one worker reports after its loop."""

    worker: int
    start: float
    end: float
    operations: int
    error: str | None = None
    cpu: float = 0.0
    """The worker's CPU seconds (user + system) during its loop."""


@dataclass(frozen=True)
class Round:
    """What every worker of one :meth:`Gang.measure` did together."""

    span: float
    """Seconds from the first start to the last end."""
    operations: int
    client_cpu: float
    """CPU seconds of all workers' loops."""


def _ours(task: Task) -> Callable[[], int]:
    """add_ack, each answering its own PENDING expectation (runs declared by the parent)."""
    store = AuditStore(redis.Redis.from_url(task.url), prefix=task.prefix)
    per_run = task.count // len(task.runs)
    items = [(run, ack_for(uuid.UUID(run), i)) for run in task.runs for i in range(per_run)]

    def loop() -> int:
        for run, ack in items:
            store.add_ack(run, ack)
        return len(items)

    return loop


def _set(task: Task) -> Callable[[], int]:
    """Raw redis-py SET of an ack-sized value to a new key per operation."""
    client = redis.Redis.from_url(task.url)
    value = b"x" * 80
    keys = [f"{task.prefix}:set:{task.worker}:{i}" for i in range(task.count)]
    client.ping()

    def loop() -> int:
        for key in keys:
            client.set(key, value)
        return len(keys)

    return loop


def _shared(task: Task, send: Callable[[str, Any], Any]) -> Callable[[], int]:
    items = []
    for i in range(task.count):
        run = task.runs[i % len(task.runs)]
        items.append((run, create_domain_ack(uuid.UUID(run), "shared", f"w{task.worker}_a{i}")))

    def loop() -> int:
        for run, ack in items:
            send(run, ack)
        return len(items)

    return loop


def _ours_shared(task: Task) -> Callable[[], int]:
    """add_ack into runs every worker writes (for the lost-acks count)."""
    store = AuditStore(redis.Redis.from_url(task.url), prefix=task.prefix)
    return _shared(task, store.add_ack)


def _legacy_shared(task: Task) -> Callable[[], int]:
    """The old design's add_ack into runs every worker writes."""
    store = LegacyAuditStore(redis.Redis.from_url(task.url), prefix=task.prefix)
    return _shared(task, store.add_ack)


PREPARE: dict[str, Callable[[Task], Callable[[], int]]] = {
    "ours": _ours,
    "set": _set,
    "ours_shared": _ours_shared,
    "legacy_shared": _legacy_shared,
}


def _serve(tasks: Any, results: Any, barrier: Any) -> None:
    """A worker's main loop: one task at a time until ``None``."""
    while (task := tasks.get()) is not None:
        try:
            loop = PREPARE[task.kind](task)
            barrier.wait(BARRIER_TIMEOUT)
            start, cpu = time.monotonic(), time.process_time()
            done = loop()
            cpu = time.process_time() - cpu
            results.put(Outcome(task.worker, start, time.monotonic(), done, cpu=cpu))
        except Exception:  # reported to the parent, which raises it
            barrier.abort()
            results.put(Outcome(task.worker, 0.0, 0.0, 0, traceback.format_exc()))


class Gang:
    """``size`` spawned worker processes; :meth:`run` gives each one task."""

    def __init__(self, size: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.size = size
        self._barrier = ctx.Barrier(size)
        self._results: Any = ctx.Queue()
        self._tasks: list[Any] = [ctx.Queue() for _ in range(size)]
        self._procs = [
            ctx.Process(target=_serve, args=(q, self._results, self._barrier), daemon=True)
            for q in self._tasks
        ]
        for proc in self._procs:
            proc.start()

    def run(self, tasks: list[Task]) -> tuple[float, int]:
        """Run one task per worker; (seconds from first start to last end, operations)."""
        done = self.measure(tasks)
        return done.span, done.operations

    def measure(self, tasks: list[Task]) -> Round:
        """Run one task per worker; the span, the operations and the workers' CPU time."""
        if len(tasks) != self.size:
            raise ValueError(f"need {self.size} tasks, got {len(tasks)}")
        for q, task in zip(self._tasks, tasks, strict=True):
            q.put(task)
        outcomes: list[Outcome] = []
        deadline = time.monotonic() + BARRIER_TIMEOUT * 3
        while len(outcomes) < self.size:
            try:
                outcomes.append(self._results.get(timeout=1.0))
            except queue.Empty:
                dead = [p.exitcode for p in self._procs if p.exitcode is not None]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"benchmark workers stopped (exit codes {dead})"
                        if dead
                        else "a benchmark worker stopped answering"
                    ) from None
        errors = [o.error for o in outcomes if o.error]
        if errors:
            raise RuntimeError(f"a benchmark worker failed:\n{errors[0]}")
        span = max(o.end for o in outcomes) - min(o.start for o in outcomes)
        return Round(span, sum(o.operations for o in outcomes), sum(o.cpu for o in outcomes))

    def close(self, timeout: float = 30.0) -> None:
        """Stop every worker: ask, wait up to ``timeout`` seconds each, then terminate."""
        for q in self._tasks:
            q.put(None)
        for proc in self._procs:
            proc.join(timeout)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
