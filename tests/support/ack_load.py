"""Real worker processes that ack under load, for the cluster fault tests.

Each worker opens its own store from a URL, waits for the start signal, sends
its share of acks and reports which calls returned, which raised (with the
error text) and how long each took. A ``sync`` worker sends one ``add_ack`` at a
time on an AuditStore; an ``async`` worker runs ``concurrency`` callers at once
on an AsyncAuditStore (auto-pipelined). Workers run in the ``spawn`` context, so
nothing is shared with the test process but the URL.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext
from typing import Any, NamedTuple, TypeVar

from rac_store import AsyncAuditStore, AuditStore, RACStoreError, create_domain_ack

T = TypeVar("T")

Job = tuple[str, str, str]
"""(run_id, domain, action) of one ack."""


@dataclass
class WorkerReport:
    """What one worker saw."""

    recorded: list[tuple[str, str]] = field(default_factory=list)  # (run_id, ack id hex)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    rerouted: Counter[str] = field(default_factory=Counter)
    """Sync workers: calls their store's short path handed to the cluster client, by error."""
    outcomes: Counter[str] = field(default_factory=Counter)
    """What the calls that returned reported (RECORDED, DRIFT, ...)."""

    def note(
        self,
        progress: Any,
        started: float,
        recorded: tuple[str, str] | None = None,
        error: BaseException | None = None,
        outcome: str | None = None,
    ) -> None:
        """One finished call: its outcome, its duration, and the shared progress count."""
        if recorded is not None:
            self.recorded.append(recorded)
        if outcome is not None:
            self.outcomes[outcome] += 1
        if error is not None:
            self.errors.append(f"{type(error).__name__}: {error}")
        self.latencies.append(time.perf_counter() - started)
        with progress.get_lock():
            progress.value += 1


class Sync(NamedTuple):
    """What a worker shares with the test process."""

    ready: Any  # semaphore: released once the worker has its store
    go: Any  # event: set when every worker is ready
    progress: Any  # shared counter of calls made
    out: Any  # queue: each worker puts its WorkerReport


def ack_worker(url: str, options: dict[str, Any], jobs: Sequence[Job], sync: Sync) -> None:
    """Ack every job after ``go`` is set; put a WorkerReport on ``out``, whatever happens."""
    ready, go, progress, out = sync
    report = WorkerReport()
    try:
        store = AuditStore.from_url(url, **{"metrics": False, **options})
    except BaseException as exc:
        report.errors.append(f"start: {type(exc).__name__}: {exc}")
        ready.release()
        out.put(report)
        raise
    ready.release()
    go.wait()
    try:
        for run_id, domain, action in jobs:
            ack = create_domain_ack(uuid.UUID(run_id), domain, action)
            started = time.perf_counter()
            try:
                outcome = store.add_ack(run_id, ack)
            except RACStoreError as exc:
                report.note(progress, started, error=exc)
            else:
                report.note(progress, started, (run_id, ack.id.hex), outcome=outcome.value)
    except BaseException as exc:
        report.errors.append(f"crash: {type(exc).__name__}: {exc}")
        raise
    finally:
        if store._sender.router is not None:  # a Redis Cluster
            report.rerouted = store._sender.router.rerouted
        out.put(report)
        store.close()


def async_ack_worker(url: str, options: dict[str, Any], jobs: Sequence[Job], sync: Sync) -> None:
    """As :func:`ack_worker`, with ``options["concurrency"]`` callers on one AsyncAuditStore."""
    ready, go, progress, out = sync
    options = dict(options)
    concurrency = options.pop("concurrency", 32)
    report = WorkerReport()

    async def caller(store: AsyncAuditStore, todo: Iterator[Job]) -> None:
        for run_id, domain, action in todo:
            ack = create_domain_ack(uuid.UUID(run_id), domain, action)
            started = time.perf_counter()
            try:
                outcome = await store.add_ack(run_id, ack)
            except RACStoreError as exc:
                report.note(progress, started, error=exc)
            else:
                report.note(progress, started, (run_id, ack.id.hex), outcome=outcome.value)

    async def main() -> None:
        try:
            store = AsyncAuditStore.from_url(url, **{"metrics": False, **options})
            await store.initialize()
        finally:
            ready.release()
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        todo = iter(jobs)
        try:
            await asyncio.gather(*(caller(store, todo) for _ in range(concurrency)))
        finally:
            await store.aclose()

    try:
        asyncio.run(main())
    except BaseException as exc:
        report.errors.append(f"crash: {type(exc).__name__}: {exc}")
        raise
    finally:
        out.put(report)


WORKERS = {"sync": ack_worker, "async": async_ack_worker}


class AckLoad:
    """``workers`` processes acking ``jobs`` (split round-robin) against ``url``.

    ``mode`` is ``sync`` or ``async`` (see the module docstring); ``store_options``
    go to each worker's ``from_url`` (and ``concurrency`` to an async worker).
    """

    def __init__(
        self,
        url: str,
        jobs: Sequence[Job],
        workers: int = 4,
        mode: str = "sync",
        **store_options: Any,
    ) -> None:
        ctx: SpawnContext = multiprocessing.get_context("spawn")
        self.total = len(jobs)
        self._ready = ctx.Semaphore(0)
        self._go = ctx.Event()
        self.progress = ctx.Value("q", 0)
        self._out = ctx.Queue()
        self._procs = [
            ctx.Process(
                target=WORKERS[mode],
                args=(
                    url,
                    store_options,
                    list(jobs[i::workers]),
                    Sync(self._ready, self._go, self.progress, self._out),
                ),
            )
            for i in range(workers)
        ]

    def start(self, timeout: float = 60.0) -> AckLoad:
        """Start the processes, wait until each has its store, and let them go."""
        self.launch(timeout)
        self.release()
        return self

    def launch(self, timeout: float = 60.0) -> AckLoad:
        """Start the processes and wait until each has its store (they wait for release)."""
        for proc in self._procs:
            proc.start()
        for _ in self._procs:
            if not self._ready.acquire(timeout=timeout):
                raise TimeoutError(f"a worker did not open its store within {timeout}s")
        return self

    def release(self) -> None:
        """Let the launched workers send their acks."""
        self._go.set()

    def wait_progress(self, done: int, timeout: float = 60.0) -> None:
        """Wait until ``done`` acks have been sent (in total)."""
        deadline = time.monotonic() + timeout
        while self.progress.value < done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.progress.value} of {done} acks sent")
            if not any(p.is_alive() for p in self._procs):
                raise RuntimeError("every worker exited early")
            time.sleep(0.005)

    def join(self, timeout: float = 120.0) -> WorkerReport:
        """Wait for every worker; their reports merged."""
        merged = WorkerReport()
        for _ in self._procs:
            report = self._out.get(timeout=timeout)  # every worker reports, even on a crash
            merged.recorded += report.recorded
            merged.errors += report.errors
            merged.latencies += report.latencies
            merged.rerouted += report.rerouted
            merged.outcomes += report.outcomes
        for proc in self._procs:
            proc.join(timeout)
        crashed = [p.exitcode for p in self._procs if p.exitcode != 0]
        if crashed:
            raise RuntimeError(f"workers exited with {crashed}: {merged.errors[-3:]}")
        return merged

    def around(self, fault: Callable[[], T], after: float = 0.1) -> tuple[T, int, WorkerReport]:
        """Start, call ``fault()`` once ``after`` of the acks are sent, and join.

        Returns what ``fault`` returned, the acks sent while it ran, and the merged
        report. Workers still alive after an error are killed.
        """
        try:
            self.start()
            self.wait_progress(int(self.total * after))
            before = self.progress.value
            result = fault()
            during = self.progress.value - before
            return result, during, self.join()
        finally:
            self.stop()

    def stop(self) -> None:
        """Kill workers that are still alive (after a failed test)."""
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()
                proc.join(5)
