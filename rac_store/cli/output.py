"""How the operator commands print: times, tables, JSON lines, findings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..core import ms_to_datetime
from ..models import Finding


def iso(ms: int | None) -> str:
    """Epoch milliseconds as an ISO 8601 UTC time with milliseconds."""
    if ms is None:
        return "-"
    return ms_to_datetime(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def relative(ms: int, now_ms: int) -> str:
    """``in 2.5s`` or ``3.1s ago``."""
    delta = (ms - now_ms) / 1000
    return f"in {delta:.1f}s" if delta >= 0 else f"{-delta:.1f}s ago"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns."""
    cells = [list(map(str, headers)), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def emit_json(value: Any) -> None:
    """One JSON document on one line, flushed (JSON lines for long-running commands)."""
    print(json.dumps(value, default=str, separators=(",", ":")), flush=True)


def describe(finding: Finding) -> str:
    """One human line for a findings event."""
    what = f"{finding.domain}/{finding.action}" if finding.domain else ""
    extra = ""
    if finding.type.value in ("INCOMPLETE", "STALE"):
        d = finding.details
        extra = f"missing={d.get('missing')} failed={d.get('failed')} drift={d.get('drift')}"
    elif finding.due_ms is not None:
        extra = f"due {iso(finding.due_ms)}"
    parts = [iso(finding.at_ms), f"{finding.type.value:<10}", finding.run_id, what, extra]
    return "  ".join(p for p in parts if p) + f"  ({finding.source})"
