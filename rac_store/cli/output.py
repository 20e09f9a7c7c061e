"""How the commands print: times, tables, JSON, findings, failures, and a closed stdout.

With ``--json`` stdout carries only JSON (one document per line); every message
for people goes to stderr. A failure with ``--json`` is also one JSON object on
stdout, ``{"error": ..., "type": ..., "exit": N}``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
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


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types, whatever it holds.

    Metadata is whatever users put in it: a map key that is not a string (a tuple,
    a number) becomes its text, tuples and sets become lists, bytes are decoded
    (invalid bytes as ``\\x..`` escapes), times become ISO 8601, enums their value,
    a float that JSON cannot hold (NaN, infinity) its text, anything else ``str``.
    """
    for kinds, convert in _CONVERSIONS:
        if isinstance(value, kinds):
            return convert(value)
    return str(value)


_CONVERSIONS: tuple[tuple[Any, Callable[[Any], Any]], ...] = (
    (Enum, lambda v: jsonable(v.value)),  # before str: the store's enums are strings
    (bool | int | str | type(None), lambda v: v),
    (float, lambda v: v if math.isfinite(v) else str(v)),
    (Mapping, lambda v: {_key(k): jsonable(item) for k, item in v.items()}),
    (list | tuple, lambda v: [jsonable(item) for item in v]),
    (set | frozenset, lambda v: sorted((jsonable(item) for item in v), key=repr)),
    (bytes | bytearray, lambda v: bytes(v).decode("utf-8", errors="backslashreplace")),
    (datetime | date, lambda v: v.isoformat()),
    (uuid.UUID, str),
)


def _key(key: Any) -> str:
    plain = jsonable(key)
    return plain if isinstance(plain, str) else json.dumps(plain, separators=(",", ":"))


def emit_json(value: Any) -> None:
    """One JSON document on one line, flushed (JSON lines for long-running commands)."""
    print(json.dumps(jsonable(value), separators=(",", ":")), flush=True)


def say(message: str) -> None:
    """A message for people, on stderr (never mixed into the results on stdout)."""
    print(f"rac-store: {message}", file=sys.stderr, flush=True)


def report_failure(message: str, kind: str, exit_code: int, *, as_json: bool) -> int:
    """Print a failure (stderr; also a JSON object on stdout with ``--json``); its exit code."""
    say(message)
    if as_json:
        emit_json({"error": message, "type": kind, "exit": exit_code})
    return exit_code


def silence_stdout() -> None:
    """After the reader of stdout went away: send what is left to /dev/null.

    Python flushes stdout at exit, which would fail once more on the closed pipe
    (the recipe of the ``signal`` module's documentation, "Note on SIGPIPE").
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


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
