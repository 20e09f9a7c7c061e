"""Figures (ratios against goals), the printed table, the JSON file, the machine."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True)
class Goal:
    """``ratio <= value`` (``at_most``) or ``ratio >= value``; ``must_be`` for exact counts."""

    op: str
    value: float

    def met(self, ratio: float) -> bool:
        """Whether ``ratio`` meets the goal."""
        if self.op == "<=":
            return ratio <= self.value
        if self.op == ">=":
            return ratio >= self.value
        return ratio == self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass
class Figure:
    """One ratio measured side by side: ours over the reference, against a goal."""

    key: str
    title: str
    ours: float
    reference: float
    unit: str
    goal: Goal | None
    ratio: float = field(init=False)
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ratio = self.ours / self.reference if self.reference else float("inf")

    @property
    def met(self) -> bool | None:
        """None for a figure that is only reported."""
        return None if self.goal is None else self.goal.met(self.ratio)

    def as_json(self) -> dict[str, Any]:
        """The figure as JSON-ready builtins."""
        data = asdict(self)
        data["goal"] = None if self.goal is None else str(self.goal)
        data["met"] = self.met
        return data


@dataclass
class Count:
    """A figure that is a count, not a ratio (lost acks): ours beside the baseline's."""

    key: str
    title: str
    ours: int
    baseline: int
    must_be: int
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        """Ours equals the required count."""
        return self.ours == self.must_be

    def as_json(self) -> dict[str, Any]:
        """The count as JSON-ready builtins."""
        data = asdict(self)
        data["met"] = self.met
        return data


def _value(value: float, unit: str) -> str:
    if unit == "us":
        return f"{value:,.1f} µs"
    if unit == "ops/s":
        return f"{value:,.0f}/s"
    if unit == "B":
        return f"{value:,.1f} B"
    if unit == "keys":
        return f"{value:,.1f}"
    return f"{value:,.2f} {unit}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "report"}[met]


def table(figures: list[Figure | Count]) -> str:
    """The figures as a fixed-width text table."""
    head = f"{'figure':<66} {'ours':>14} {'reference':>14} {'ratio':>8} {'goal':>8}  verdict"
    lines = [head, "-" * len(head)]
    for fig in figures:
        if isinstance(fig, Count):
            lines.append(
                f"{fig.title:<66} {fig.ours:>14,} {fig.baseline:>14,} {'':>8}"
                f" {'= ' + str(fig.must_be):>8}  {_verdict(fig.met)}"
            )
            continue
        goal = "" if fig.goal is None else str(fig.goal)
        lines.append(
            f"{fig.title:<66} {_value(fig.ours, fig.unit):>14}"
            f" {_value(fig.reference, fig.unit):>14}"
            f" {fig.ratio:>8.2f} {goal:>8}  {_verdict(fig.met)}"
        )
    return "\n".join(lines)


def markdown(figures: list[Figure | Count]) -> str:
    """The figures as a Markdown table (for BENCHMARKS.md)."""
    lines = [
        "| figure | ours | reference | ratio | goal | verdict |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for fig in figures:
        title = fig.title.strip()
        if isinstance(fig, Count):
            lines.append(
                f"| {title} | {fig.ours:,} | {fig.baseline:,} (baseline) | | = {fig.must_be}"
                f" | {_verdict(fig.met)} |"
            )
            continue
        goal = "" if fig.goal is None else str(fig.goal).replace("<=", "≤").replace(">=", "≥")
        lines.append(
            f"| {title} | {_value(fig.ours, fig.unit)} | {_value(fig.reference, fig.unit)}"
            f" | {fig.ratio:.2f} | {goal} | {_verdict(fig.met)} |"
        )
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def machine(redis_version: str) -> dict[str, Any]:
    """What the figures were measured on."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "redis_server": redis_version,
        "redis_py": _version("redis"),
        "hiredis": _version("hiredis"),
        "fakeredis": _version("fakeredis"),
        "lupa": _version("lupa"),
        "msgspec": _version("msgspec"),
        "platform": platform.platform(),
        "load_average_at_start": load,
    }


def write_json(
    path: Path,
    mode: str,
    info: dict[str, Any],
    figures: list[Figure | Count],
    profile: dict[str, Any],
    seconds: float,
    targets: Sequence[Any] = (),
) -> None:
    """Write every figure, the targets, the machine and the profile to ``path``."""
    document = {
        "mode": mode,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(seconds, 1),
        "machine": info,
        "figures": [fig.as_json() for fig in figures],
        "targets": [target.as_json() for target in targets],
        "profile": profile,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def say(text: str, stream: TextIO | None = None) -> None:
    """Print a progress line at once (the run takes minutes)."""
    print(text, file=stream or sys.stdout, flush=True)
