"""The deadline sweep's cost per due run, beside PING and beside the embedded server.

For 1 and 4 overdue expectations per run, it declares ``sweep_runs`` runs (each with
those overdue expectations and one due in ten minutes) in a namespace of its own on
the run's Redis, and the same on a new embedded server. After one untimed sweep each
(which loads the script), it sweeps both until nothing is due, ``LIMIT`` runs per
call, alternating the two call by call; after each call it sends as many PINGs on the
same connection as the call swept runs, so the sweep and the round trip are timed side
by side. Nothing is flushed: a sweep reads only its own namespace's pending index. On a
server the run started, ``INFO commandstats`` read before and after gives the commands
and server time per due run; on a ``--redis-url`` server (other clients' commands would
count too) they are left out.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from rac_store import AuditExpectation, AuditReconciler, AuditStore

from .breakdown import CommandStats, commandstats, since
from .context import Bench
from .report import Figure, say

LIMIT = 100
"""Runs per ``sweep()`` call."""
OVERDUE = (1, 4)
"""Overdue expectations per run, one measurement each."""


def prepare(store: AuditStore, runs: int, overdue: int) -> None:
    """``runs`` runs, each with ``overdue`` expectations past due and one not due."""
    for _ in range(runs):
        run = uuid.uuid4()
        exps = [AuditExpectation(run, "d", f"late{i}", 0) for i in range(overdue)]
        exps.append(AuditExpectation(run, "d", "later", 600_000))
        store.add_expectations(run, exps)


@dataclass
class Side:
    """One backend being swept, and what its sweep calls and PINGs took."""

    store: AuditStore
    reconciler: AuditReconciler = field(init=False)
    runs: int = 0
    calls: int = 0
    pings: int = 0
    sweep_s: float = 0.0
    ping_s: float = 0.0
    more_due: bool = True

    def __post_init__(self) -> None:
        self.reconciler = AuditReconciler(self.store, metrics=False)

    def warm_up(self) -> None:
        """Sweep one due run, untimed: the script is loaded and the connection open."""
        prepare(self.store, 1, 1)
        time.sleep(0.01)
        while self.reconciler.sweep(limit=LIMIT).more_due:
            pass

    def step(self) -> None:
        """One sweep call, then one PING per run it swept (at least one)."""
        started = time.perf_counter()
        report = self.reconciler.sweep(limit=LIMIT)
        self.sweep_s += time.perf_counter() - started
        self.runs += report.runs_swept
        self.calls += 1
        self.more_due = report.more_due
        count = max(report.runs_swept, 1)
        started = time.perf_counter()
        for _ in range(count):
            self.store.client.ping()
        self.ping_s += time.perf_counter() - started
        self.pings += count

    @property
    def us_per_run(self) -> float:
        """Wall time of the sweep calls per due run (µs)."""
        return self.sweep_s / max(self.runs, 1) * 1e6

    @property
    def ping_us(self) -> float:
        """Mean PING time on the same connection (µs)."""
        return self.ping_s / max(self.pings, 1) * 1e6


def _server_counts(before: CommandStats, after: CommandStats, runs: int) -> dict[str, Any]:
    """Commands and EVALSHA server time per due run, from two commandstats readings."""
    delta = since(before, after)
    calls = {name: n for name, (n, _) in delta.items() if n and name not in ("ping", "info")}
    evalsha_calls, evalsha_usec = delta.get("evalsha", (0, 0))
    return {
        "commands_per_run": sum(calls.values()) / runs,
        "evalsha_per_run": evalsha_calls / runs,
        "script_us": evalsha_usec / max(evalsha_calls, 1),
        "commands": {name: round(n / runs, 2) for name, n in sorted(calls.items())},
    }


def measure(bench: Bench, overdue: int) -> tuple[Side, Side, dict[str, Any]]:
    """Sweep Redis and the embedded server side by side; (Redis, embedded, server counts)."""
    runs = bench.sizes.sweep_runs
    sides = [
        Side(bench.store(f"sweep{overdue}", metrics=False)),
        Side(bench.embedded_store(metrics=False)),
    ]
    for side in sides:
        side.warm_up()
        prepare(side.store, runs, overdue)
    time.sleep(0.01)  # every 0 ms deadline is now in the past
    client = sides[0].store.client
    before = commandstats(client) if bench.own_server else None
    while any(side.more_due for side in sides):
        for side in sides:
            if side.more_due:
                side.step()
    counts = _server_counts(before, commandstats(client), runs) if before is not None else {}
    for side in sides:
        side.store.close()
        if side.runs != runs:
            raise RuntimeError(f"{runs} runs were due, the sweep swept {side.runs}")
    return sides[0], sides[1], counts


def _detail(remote: Side, local: Side, counts: dict[str, Any]) -> dict[str, Any]:
    return {
        "runs": remote.runs,
        "limit": LIMIT,
        "sweep_calls": remote.calls,
        "us_per_run": remote.us_per_run,
        "ping_us": remote.ping_us,
        "embedded_us_per_run": local.us_per_run,
        "embedded_ping_us": local.ping_us,
        **counts,
    }


def figures(bench: Bench) -> list[Figure]:
    """Sweep time per due run / PING for each overdue count; embedded / Redis for the first."""
    found: list[Figure] = []
    sides: dict[int, tuple[Side, Side]] = {}
    for overdue in OVERDUE:
        remote, local, counts = measure(bench, overdue)
        sides[overdue] = remote, local
        commands = f"; {counts['commands_per_run']:.1f} commands per run" if counts else ""
        say(
            f"    {overdue} overdue: {remote.us_per_run:.1f} µs per due run,"
            f" PING {remote.ping_us:.1f} µs, embedded {local.us_per_run:.1f} µs{commands}"
        )
        found.append(
            Figure(
                f"sweep_{overdue}_overdue",
                f"sweep, {overdue} overdue per run: time per due run / PING",
                remote.us_per_run,
                remote.ping_us,
                "us",
                None,
                _detail(remote, local, counts),
            )
        )
    remote, local = sides[OVERDUE[0]]
    found.append(
        Figure(
            "sweep_embedded",
            f"  embedded sweep / Redis sweep, per due run ({OVERDUE[0]} overdue)",
            local.us_per_run,
            remote.us_per_run,
            "us",
            None,
        )
    )
    return found
