"""Issue 16's targets, each read from the figures of the same run: value, goal, verdict.

Most targets are a figure's ratio; two are absolute (the server's microseconds per
ack) and one a difference (``add_ack`` p50 minus ``PING`` p50 on one connection),
because that is how the issue states them. A target whose figure the run did not
measure (``--redis-url``: no server statistics) says so instead of a verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .report import Count, Figure, Goal


@dataclass(frozen=True)
class Target:
    """One target: what was measured (None: not in this run), its goal, where it comes from."""

    title: str
    value: float | None
    unit: str
    goal: Goal | None
    source: str
    note: str = ""

    @property
    def met(self) -> bool | None:
        """None when only reported, or not measured."""
        if self.goal is None or self.value is None:
            return None
        return self.goal.met(self.value)

    @property
    def verdict(self) -> str:
        """met, MISSED, report, or not measured."""
        if self.value is None:
            return "not measured"
        return {True: "met", False: "MISSED", None: "report"}[self.met]

    def shown(self) -> str:
        """The value with its unit."""
        if self.value is None:
            return "—"
        if self.unit == "us":
            return f"{self.value:,.1f} µs"
        return f"{self.value:.2f}"

    def as_json(self) -> dict[str, Any]:
        """The target as JSON-ready builtins."""
        return {
            "title": self.title,
            "value": self.value,
            "unit": self.unit,
            "goal": None if self.goal is None else str(self.goal),
            "met": self.met,
            "source": self.source,
            "note": self.note,
        }


def _ratio(
    figures: dict[str, Figure], key: str, title: str, goal: Goal | None, note: str = ""
) -> Target:
    fig = figures.get(key)
    return Target(title, None if fig is None else fig.ratio, "x", goal, key, note)


def _absolute(figures: dict[str, Figure], key: str, title: str, goal: Goal) -> Target:
    fig = figures.get(key)
    return Target(title, None if fig is None else fig.ours, "us", goal, key)


def _gap(figures: dict[str, Figure]) -> Target:
    fig = figures.get("latency_p50")
    gap = None if fig is None else fig.ours - fig.reference
    title = "add_ack p50 - PING p50, same connection"
    return Target(title, gap, "us", Goal("<=", 10), "latency_p50")


def _note(figures: dict[str, Figure], key: str, render: Callable[[Figure], str]) -> str:
    """``render(figure)`` of the figure ``key``, or nothing when the run did not measure it."""
    fig = figures.get(key)
    return "" if fig is None else render(fig)


def _cpu_split(fig: Figure) -> str:
    d = fig.detail
    return (
        f"CPU per op: add_ack {d['ours_client_cpu_us_per_op']:.1f} µs client"
        f" + {d['ours_server_cpu_us_per_op']:.1f} µs server;"
        f" SET {d['set_client_cpu_us_per_op']:.1f} + {d['set_server_cpu_us_per_op']:.1f} µs"
    )


def _memory(fig: Figure) -> str:
    ours, theirs = fig.detail["ours"], fig.detail["original"]
    return (
        f"{fig.ours:,.0f} B vs {fig.reference:,.0f} B per run at 1M runs"
        f" (extrapolated from {ours['runs']:,}); keys per run"
        f" {ours['keys_per_run']:.0f} vs {theirs['keys_per_run']:.0f}"
    )


def _batch_by_send(fig: Figure) -> str:
    before, after = fig.detail["execute_command"], fig.detail["direct"]
    return (
        f"send-path step: {after['batch_ratio']:.2f} with the direct send,"
        f" {before['batch_ratio']:.2f} with execute_command (single acks got cheaper)"
    )


def build(results: list[Figure | Count]) -> list[Target]:
    """Every target of issue 16, from the run's figures."""
    figures = {f.key: f for f in results if isinstance(f, Figure)}
    return [
        _gap(figures),
        _absolute(
            figures, "server_single", "server µs per single ack (commandstats)", Goal("<=", 6)
        ),
        _absolute(
            figures,
            "server_batch",
            "server µs per ack, batches of 100 (commandstats)",
            Goal("<=", 1.5),
        ),
        _ratio(figures, "peer_rq_finish", "add_ack p50 / RQ job finish p50", Goal("<=", 0.9)),
        _ratio(figures, "peer_celery", "add_ack p50 / Celery store_result p50", Goal("<=", 0.4)),
        _ratio(
            figures, "async_vs_naive", "asyncio, 1,000 callers / naive EVALSHA loop", Goal(">=", 5)
        ),
        _ratio(
            figures,
            "throughput_8p",
            "8 processes: add_ack/s / raw SET/s",
            Goal(">=", 0.9),
            _note(figures, "throughput_8p_cpu", _cpu_split),
        ),
        _ratio(
            figures,
            "memory_per_run",
            "memory per run / original's two JSON strings",
            Goal("<=", 0.5),
            _note(figures, "memory_per_run", _memory),
        ),
        _ratio(
            figures, "flat_cost", "no regression: flat cost (10,000 acks / fresh)", Goal("<=", 1.1)
        ),
        _ratio(figures, "memory", "no regression: bytes per ack / baseline", Goal("<=", 0.5)),
        _ratio(
            figures,
            "batch",
            "no regression: batches of 100 / single",
            Goal(">=", 10),
            _note(figures, "direct_send_p50", _batch_by_send),
        ),
        _ratio(
            figures,
            "sweep_1_overdue",
            "no regression: sweep per due run / PING (1 overdue)",
            None,
            "no goal number: compare with the previous run's ratio (BENCHMARKS.md)",
        ),
    ]


def table(targets: list[Target]) -> str:
    """The targets as a fixed-width text table."""
    head = f"{'target':<52} {'measured':>12} {'goal':>8}  {'verdict':<12} note"
    lines = [head, "-" * len(head)]
    for t in targets:
        goal = "" if t.goal is None else str(t.goal)
        lines.append(f"{t.title:<52} {t.shown():>12} {goal:>8}  {t.verdict:<12} {t.note}")
    return "\n".join(lines)


def markdown(targets: list[Target]) -> str:
    """The targets as a Markdown table."""
    lines = ["| target | measured | goal | verdict | note |", "|---|---:|---:|---|---|"]
    for t in targets:
        goal = "" if t.goal is None else str(t.goal).replace("<=", "≤").replace(">=", "≥")
        lines.append(f"| {t.title} | {t.shown()} | {goal} | {t.verdict} | {t.note} |")
    return "\n".join(lines)
