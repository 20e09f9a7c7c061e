"""Issue 16, phase B: the server-side levers, each weighed beside the current script.

``python -m benchmarks.server_levers [--quick] [--output PATH]``, on a redis-server of
its own (:mod:`benchmarks.servers`; never port 6379). Nothing in ``lua/`` or
``rac_store/`` changes: every variant is built here from the script the store loads
(``add_acks.lua`` with ``common.lua`` inlined), by replacements that must each match
exactly once, so a change to the script shows up as a failure here, not as a stale copy.

The four skips this study weighed (:data:`SKIPS`: work taken off the ack's path, each
keeping the semantics exactly) are adopted in ``lua/``: the current script has them.
The study keeps measuring them the other way round, by undoing them: ``SKIPS`` holds,
per skip, the text now and the text before adoption.

Speed (server µs per ack, ``INFO commandstats``; :mod:`benchmarks.server_time`'s
method and helpers): single acks and ``add_acks`` calls of 100, each answering PENDING
expectations of fresh runs, sent with the very KEYS and ARGV the store builds, to

* ``current``: ``EVALSHA`` of ``add_acks.lua`` as the store loads it (skips adopted);
* ``before adoption``: the script as it was before the skips were adopted (every skip
  of :data:`SKIPS` undone), and ``before + <name>``: that script with one skip alone
  (the others undone), each skip's own share;
* ``fcall``: the current logic as a Redis Function (``FUNCTION LOAD`` of a ``#!lua
  name=...`` library): ``common.lua``'s helpers, the script's constants and its local
  functions are defined once per library load, not on every call; KEYS and ARGV
  become library-level upvalues assigned at the start of each call (so the helpers,
  which read ``KEYS``/``ARGV``, run unchanged);
* the floors: an empty script (``return {0}``) and an empty function with the same
  KEYS and ARGV.

All in interleaved blocks (rotating order), each figure the median of its blocks.

Before anything is timed, :func:`check_equivalence` runs scenarios that reach every
outcome (recorded, duplicate, re-sent call, drift, late, MISSING, failure, retry,
rollback, settling with a verdict event, a merged call of two runs, a batch with a
repeated ack id) and the argument errors, through the current script and through each
variant on copies of the same data (``COPY``), and compares replies, errors and every
key's contents (server times checked to fall inside the check's window, then masked).
A variant that differs stops the run.

Memory (:mod:`benchmarks.memory_per_run`'s method and helpers: ``used_memory`` delta,
keys, ``MEMORY USAGE`` per kind, extrapolated to 1M runs): standard runs (4
expectations + 4 acks) written by the store, then the same contents rewritten with
plain commands in other layouts: the current one (a check of the rewrite), one hash
per run (expectations, statuses and ack ids as ``e:``/``s:``/``a:`` fields) beside the
acks list, the run id as 22 characters of base64url in the key names, expectations
stored without the domain and action their field name already holds, and all three;
and the original design's two JSON strings per run. The findings streams are the same
events in every layout: their share per run at 1M runs (measured on the store's side)
is added to each rewritten layout.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis

from rac_store import AuditExpectation, AuditStore, create_domain_ack, create_run_expectations
from rac_store.acks import ack_group, add_acks_call
from rac_store.embedded import create_embedded_client
from rac_store.keys import KeySpace
from rac_store.models import DomainAck
from rac_store.scripts import Script, ScriptCall, load_scripts
from tests.support.snapshot import _value

from . import memory_per_run
from .context import BATCH
from .measure import interleaved, time_each
from .server_time import EMPTY_SCRIPT, Readings, timed
from .servers import redis_server
from .workload import DOMAIN, ack_for, action, chunks, expectations_for, pending_acks

LIBRARY = "rac_levers"
FUNCTION = "rac_levers_add_acks"
EMPTY_LIBRARY = "rac_levers_empty"
EMPTY_FUNCTION = "rac_levers_empty"

# -- the variants' texts ------------------------------------------------------------

SKIPS: dict[str, list[tuple[str, str]]] = {
    # A PENDING record is always one of the two texts add_expectations writes
    # (status_record('PENDING', 0, '0', live)); parse_status gives exactly the defaults
    # for them, any other record still goes through it.
    "pending_parse": [
        (
            "  -- A PENDING record is always one of the two texts add_expectations writes\n"
            "  -- (status_record('PENDING', 0, '0', live)), whose values are these defaults:\n"
            "  -- known without string.match. Any other record is parsed.\n"
            "  if record == 'PENDING|0|0|0' then\n"
            "    status = 'PENDING'\n"
            "  elseif record == 'PENDING|0|0|1' then\n"
            "    status, live = 'PENDING', '1'\n"
            "  elseif record then\n"
            "    status, acked_at, late, live = parse_status(record)\n"
            "  end\n",
            "  if record then status, acked_at, late, live = parse_status(record) end\n",
        )
    ],
    # status_record's string.format('%d', now) once per call, not once per ack.
    "status_format": [
        (
            "local now = now_ms()\n"
            "-- The clock as status records hold it, formatted once per call rather than"
            " once per ack.\n"
            "local now_text = string.format('%d', now)\n",
            "local now = now_ms()\n",
        ),
        (
            "    redis.call('HSET', st_key, key, status_record(target, now_text, late, live))\n",
            "    redis.call('HSET', st_key, key, status_record(target, now, late, live))\n",
        ),
        (
            "-- acked_at: ms as a number, or already as its text (add_acks formats its clock"
            " once per call).\n"
            "local function status_record(status, acked_at, late, live)\n"
            "  if type(acked_at) ~= 'string' then acked_at = string.format('%d', acked_at) end\n"
            "  return status .. '|' .. acked_at .. '|' .. late .. '|' .. live\n",
            "local function status_record(status, acked_at, late, live)\n"
            "  return status .. '|' .. string.format('%d', acked_at)"
            " .. '|' .. late .. '|' .. live\n",
        ),
    ],
    # The table of ack ids met in this call only when the run's group has more than one ack.
    "met_table": [
        (
            "-- A run with a single ack in the call can repeat nothing: false, no table.\n",
            "",
        ),
        (
            "  local run_id, m = ARGV[at], whole(ARGV[at + 1])\n  met[k] = m > 1 and {} or false\n",
            "  met[k] = {}\n  local run_id, m = ARGV[at], whole(ARGV[at + 1])\n",
        ),
        (
            "  local seen, first_here = met[k], true\n"
            "  if seen then\n"
            "    first_here = not seen[ack_id]\n"
            "    seen[ack_id] = true\n"
            "  end\n",
            "  local first_here = not met[k][ack_id]\n  met[k][ack_id] = true\n",
        ),
    ],
    # recount's per-ack table of four deltas and its loop, unrolled (same HINCRBYs, same order).
    "recount_table": [
        (
            "-- Unrolled, without a table of the four deltas: it runs once per ack.\n",
            "",
        ),
        (
            "  local d1, d2, d3, d4 = b1 - a1, b2 - a2, b3 - a3, b4 - a4\n"
            "  if d1 == 0 and d2 == 0 and d3 == 0 and d4 == 0 then return false end\n"
            "  if d1 ~= 0 then redis.call('HINCRBY', st_key, COUNTERS[1], d1) end\n"
            "  if d2 ~= 0 then redis.call('HINCRBY', st_key, COUNTERS[2], d2) end\n"
            "  if d3 ~= 0 then redis.call('HINCRBY', st_key, COUNTERS[3], d3) end\n"
            "  if d4 ~= 0 then redis.call('HINCRBY', st_key, COUNTERS[4], d4) end\n"
            "  return true\n",
            "  local deltas = { b1 - a1, b2 - a2, b3 - a3, b4 - a4 }\n"
            "  local moved = false\n"
            "  for i = 1, 4 do\n"
            "    if deltas[i] ~= 0 then\n"
            "      redis.call('HINCRBY', st_key, COUNTERS[i], deltas[i])\n"
            "      moved = true\n"
            "    end\n"
            "  end\n"
            "  return moved\n",
        ),
    ],
}
"""The skips adopted in ``add_acks.lua`` and ``common.lua``'s ``recount`` (work taken
off an ack's path), by name: (text now, text before adoption) pairs, each found once.
Undone, they give the script as it was before (the ``before adoption`` variant)."""

BEFORE = "before adoption"
"""The variant without any of the skips: the script as it was before their adoption."""

NOT_SKIPPED = {
    "validation": "every ack is checked before the first write (a bad argument writes nothing):"
    " a one-pass design would write the acks before a bad one",
    "TIME": "an answered expectation's status record holds the server time (acked_at_ms),"
    " so every ack that moves a status needs the clock; only duplicates could skip it",
}
"""Single-ack work the profile shows that no semantics-keeping variant can drop, and why."""

# Hoisting into a function library: the script's own body, cut at these lines.
_CONSTANTS = "local RECORDED, DUPLICATE"
_ARGUMENTS = "local ttl_ms = whole(ARGV[1])"
_FUNCTIONS = "-- The new status of a recorded"
_LOOP = "\nat = 4\nfor r = 1, runs do"
_UNPACK = "local unpack_all = table.unpack or unpack\n"
_UNPACK_AT_CALL = "if not unpack_all then unpack_all = table.unpack or unpack end\n"
_SHARED = ("token", "now", "now_text", "met")
"""Locals of the body that its functions read: library-level upvalues, set per call."""


def _replace_once(text: str, old: str, new: str) -> str:
    found = text.count(old)
    if found != 1:
        raise ValueError(f"{found} matches (want 1) in add_acks.lua for {old[:60]!r}")
    return text.replace(old, new)


def current_script() -> str:
    """``add_acks.lua`` with ``common.lua`` inlined: what the store loads on Redis."""
    return load_scripts(embedded=False)[Script.ADD_ACKS].text


def without_skips(text: str, names: Sequence[str]) -> str:
    """``text`` with the :data:`SKIPS` named undone (back to their text before adoption)."""
    for name in names:
        for now, before in SKIPS[name]:
            text = _replace_once(text, now, before)
    return text


def before_adoption(text: str) -> str:
    """``text`` (an ``add_acks.lua`` text) as it was before the skips: every one undone."""
    return without_skips(text, list(SKIPS))


def only_skip(text: str, name: str) -> str:
    """``text`` before adoption but for the skip ``name`` (every other one undone)."""
    return without_skips(text, [other for other in SKIPS if other != name])


def function_library(script: str, library: str = LIBRARY, function: str = FUNCTION) -> str:
    """``script`` (an ``add_acks.lua`` text) as a Redis Functions library.

    Library level, run once per ``FUNCTION LOAD``: ``common.lua``'s helpers, the
    script's constants and its local functions. Per ``FCALL``: the header's checks, the
    validation and the loop, after ``KEYS, ARGV = keys, args``.
    """
    head, _, _ = script.partition("\n")
    if not head.startswith("#!lua"):
        raise ValueError("add_acks.lua no longer starts with a #!lua line")
    body = script[len(head) + 1 :]
    cuts = [body.index(mark) for mark in (_CONSTANTS, _ARGUMENTS, _FUNCTIONS, _LOOP)]
    if cuts != sorted(cuts):
        raise ValueError("add_acks.lua's sections are no longer in the expected order")
    common, constants, arguments, functions, loop = (
        body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)
    )
    arguments = _replace_once(arguments, "local payloads, removed, earliest_removed\n", "")
    # The load-time environment of a library has no global but `redis` (Redis 7.0): the
    # one helper read from a global at the top level is read at the first call instead.
    common = _replace_once(common, _UNPACK, "local unpack_all -- set by the first call\n")
    for name in _SHARED:
        arguments = _replace_once(arguments, f"local {name} = ", f"{name} = ")
    shared = ", ".join((*_SHARED, "payloads", "removed", "earliest_removed"))
    return (
        f"#!lua name={library}\n"
        "local KEYS, ARGV -- set at the start of each call: the helpers read them\n"
        f"{common}{constants}local {shared}\n\n{functions}"
        "local function add_acks(keys, args)\n"
        f"KEYS, ARGV = keys, args\n{_UNPACK_AT_CALL}{arguments}{loop}end\n\n"
        f"redis.register_function('{function}', add_acks)\n"
    )


EMPTY_FUNCTION_LIBRARY = (
    f"#!lua name={EMPTY_LIBRARY}\n"
    f"redis.register_function('{EMPTY_FUNCTION}', function(keys, args) return {{0}} end)\n"
)


# -- sending ------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One way to run ``add_acks`` on the server: its command head and its stat name."""

    name: str
    head: tuple[str, ...]
    """``EVALSHA <sha>`` or ``FCALL <function>``."""
    command: str
    """Its ``INFO commandstats`` name."""

    def send(self, client: redis.Redis, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The reply of the call (errors raised as redis-py's ``ResponseError``)."""
        return client.execute_command(*self.head, len(keys), *keys, *args)  # type: ignore[no-untyped-call]


def load_variants(client: redis.Redis) -> dict[str, Variant]:
    """Every variant and floor, loaded into the server of ``client``."""
    current = current_script()
    scripts = {
        "current": current,
        BEFORE: before_adoption(current),
        **{f"before + {name}": only_skip(current, name) for name in SKIPS},
    }
    variants = {
        name: Variant(name, ("EVALSHA", str(client.script_load(text))), "evalsha")
        for name, text in scripts.items()
    }
    client.function_load(function_library(current), replace=True)
    variants["fcall"] = Variant("fcall", ("FCALL", FUNCTION), "fcall")
    client.function_load(EMPTY_FUNCTION_LIBRARY, replace=True)
    variants["empty script"] = Variant(
        "empty script", ("EVALSHA", str(client.script_load(EMPTY_SCRIPT))), "evalsha"
    )
    variants["empty function"] = Variant("empty function", ("FCALL", EMPTY_FUNCTION), "fcall")
    return variants


def load_embedded_variants(client: Any) -> dict[str, Variant]:
    """``current`` (the embedded variant of the script, as the store loads it there), the
    same before adoption, and ``fcall`` (the same library as on Redis), loaded into an
    embedded server."""
    text = load_scripts(embedded=True)[Script.ADD_ACKS].text
    client.function_load(function_library(current_script()), replace=True)
    return {
        "current": Variant("current", ("EVALSHA", str(client.script_load(text))), "evalsha"),
        BEFORE: Variant(
            BEFORE, ("EVALSHA", str(client.script_load(before_adoption(text)))), "evalsha"
        ),
        "fcall": Variant("fcall", ("FCALL", FUNCTION), "fcall"),
    }


def _command(store: AuditStore, call: ScriptCall) -> tuple[Any, ...]:
    return store._scripts[call.script].command(call, by_body=True)


# -- equivalence --------------------------------------------------------------------


class NotEquivalentError(AssertionError):
    """A variant's reply, error or data differs from the current script's."""


def _server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


@dataclass
class _Check:
    """One scenario's world: the reference prefix, a copy per variant, and a time window."""

    client: redis.Redis
    store: AuditStore
    variants: dict[str, Variant]
    reference: Variant
    compared: dict[str, int]
    window: tuple[int, int] = (0, 0)
    seen: set[int] = field(default_factory=set)
    """Every outcome the current script replied (0 recorded .. 3 late)."""

    @property
    def prefix(self) -> str:
        return self.store.core.keys.prefix

    def copy_prefix(self, name: str) -> str:
        return f"{self.prefix}-{re.sub(r'[^A-Za-z0-9]+', '_', name)}"

    def _rename(self, key: Any, prefix: str) -> Any:
        text = key.decode() if isinstance(key, bytes) else str(key)
        if not text.startswith(self.prefix + ":"):
            raise ValueError(f"{text} is not under {self.prefix}")
        return prefix + text[len(self.prefix) :]

    def fork(self) -> None:
        """Every variant's prefix made a copy of the reference's keys (after the setup)."""
        keys = list(self.client.scan_iter(match=f"{self.prefix}:*", count=1000))
        for name in self.variants:
            prefix = self.copy_prefix(name)
            stale = list(self.client.scan_iter(match=f"{prefix}:*", count=1000))
            if stale:
                self.client.delete(*stale)
            for key in keys:
                self.client.copy(key, self._rename(key, prefix))
        if not self.window[0]:  # the first scenario's: earlier scenarios' keys stay
            self.window = (_server_ms(self.client), 0)

    def call(self, label: str, call: ScriptCall | tuple[Sequence[Any], Sequence[Any]]) -> Any:
        """Send ``call`` to the reference, then to every variant on its copy; same outcome."""
        keys, args = (call.keys, call.args) if isinstance(call, ScriptCall) else call
        want = self._outcome(self.reference, keys, args, self.prefix)
        if want[0] == "reply":
            self.seen.update(int(outcome) for outcome in want[1])
        for name, variant in self.variants.items():
            prefix = self.copy_prefix(name)
            got = self._outcome(variant, [self._rename(k, prefix) for k in keys], args, prefix)
            if got != want:
                raise NotEquivalentError(f"{name}, {label}: replied {got!r}, current {want!r}")
            self.compared[name] = self.compared.get(name, 0) + 1
        return want

    def _outcome(
        self, variant: Variant, keys: Sequence[Any], args: Sequence[Any], prefix: str
    ) -> Any:
        try:
            return ("reply", variant.send(self.client, keys, args))
        except redis.ResponseError as exc:
            return ("error", str(exc).replace(prefix + ":", "<prefix>:"))

    def compare_data(self, label: str) -> None:
        """Every key of each variant's copy holds what the reference's does."""
        self.window = (self.window[0], _server_ms(self.client))
        want = self._state(self.prefix)
        for name in self.variants:
            got = self._state(self.copy_prefix(name))
            if got != want:
                differ = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
                raise NotEquivalentError(f"{name}, {label}: data differs in {differ[:5]}")

    def _state(self, prefix: str) -> dict[str, Any]:
        state = {}
        for key in self.client.scan_iter(match=f"{prefix}:*", count=1000):
            kind: bytes = self.client.type(key)  # type: ignore[assignment]
            name = "<prefix>" + key.decode()[len(prefix) :]
            pttl = int(self.client.pttl(key))
            state[name] = (kind, self._mask(name, kind, _value(self.client, key, kind)), pttl > 0)
        return state

    def _in_window(self, ms: int) -> str:
        low, high = self.window
        if not low <= ms <= high:
            raise NotEquivalentError(f"server time {ms} outside the check's window {self.window}")
        return "<time>"

    def _mask(self, name: str, kind: bytes, value: Any) -> Any:
        """The value with the server times the scripts wrote masked (after checking them)."""
        if kind == b"hash" and ":st:" in name:
            masked = {}
            for member, record in value.items():
                parts = record.split(b"|")
                if len(parts) == 4 and parts[1] != b"0":
                    parts[1] = self._in_window(int(parts[1])).encode()
                masked[member] = b"|".join(parts)
            return masked
        if kind == b"stream":
            events = []
            for entry_id, entry in value:
                fields, shown = dict(entry), entry_id
                if int(entry_id.split(b"-")[0]) >= self.window[0]:
                    shown = b"<new>"
                    if b"at_ms" in fields:
                        fields[b"at_ms"] = self._in_window(int(fields[b"at_ms"])).encode()
                events.append((shown, sorted(fields.items())))
            return events
        return value


def _acks_of(run: uuid.UUID) -> dict[str, DomainAck]:
    """Acks of a standard run's four expectations, by action."""
    return {
        e.action: create_domain_ack(run, e.domain, e.action) for e in create_run_expectations(run)
    }


def _scenario_single(check: _Check) -> None:
    """Single acks through every transition of the state machine, and a re-sent call."""
    store, core = check.store, check.store.core
    run, other = uuid.uuid4(), uuid.uuid4()
    store.add_expectations(run, [*create_run_expectations(run), *expectations_for(run, 0, 2)])
    store.add_expectations(run, [AuditExpectation(run, DOMAIN, "late", 1)])
    store.add_expectations(other, [*create_run_expectations(other)])
    _send(store, core.end_run(other))  # every expectation of `other` MISSING, its verdict pushed
    time.sleep(0.01)  # `late` is past due
    check.fork()
    acks, other_acks = _acks_of(run), _acks_of(other)
    first = core.add_ack(run, acks["create_incident"])
    check.call("recorded", first)
    check.call("re-sent call (same token)", first)
    check.call("duplicate (new token)", core.add_ack(run, acks["create_incident"]))
    check.call("drift", core.add_ack(run, create_domain_ack(run, "nobody", "declared")))
    check.call("late", core.add_ack(run, create_domain_ack(run, DOMAIN, "late")))
    failed = create_domain_ack(run, "policies", "evaluate_policy", error="boom")
    check.call("failure", core.add_ack(run, failed))
    check.call("retry succeeds", core.add_ack(run, acks["evaluate_policy"]))
    rolled = create_domain_ack(run, "policies", "evaluate_policy", rolled_back=True)
    check.call("rolled back", core.add_ack(run, rolled))
    again = create_domain_ack(run, "policies", "evaluate_policy", error="again")
    check.call("failure after failure", core.add_ack(run, again))
    rest = [acks["start_trace"], acks["finalize_run"], ack_for(run, 0), ack_for(run, 1)]
    for ack in rest:  # the last one settles the run: a verdict event
        check.call(f"ack {ack.action}", core.add_ack(run, ack))
    for name, ack in other_acks.items():
        check.call(f"MISSING -> late ({name})", core.add_ack(other, ack))
    check.compare_data("single acks")


def _scenario_batches(check: _Check) -> None:
    """Calls of 100: repeated ack ids, drift, failures, a re-send, a merged call of two runs."""
    store, core = check.store, check.store.core
    run, second = uuid.uuid4(), uuid.uuid4()
    store.add_expectations(run, expectations_for(run, 0, BATCH))
    store.add_expectations(second, expectations_for(second, 0, 10))
    check.fork()
    acks = [ack_for(run, i) for i in range(BATCH - 10)]
    acks[5] = acks[4]  # an ack id twice in one call
    acks[7] = create_domain_ack(run, DOMAIN, action(7), error="failed")
    acks[8] = create_domain_ack(run, "drift", "only")
    batch = core.add_acks(run, acks)
    check.call("batch of 90", batch)
    check.call("batch re-sent", batch)
    rest = [ack_for(run, i) for i in range(BATCH - 10, BATCH)] + [ack_for(run, 7)]
    check.call("the rest, settling", core.add_acks(run, rest))
    groups = [
        ack_group(core.keys, second, [ack_for(second, i) for i in range(10)]),
        ack_group(core.keys, run, [ack_for(run, 0), create_domain_ack(run, DOMAIN, "x")]),
    ]
    check.call("two runs in one call", add_acks_call(groups, core.ack_settings))
    check.compare_data("batches")


def _scenario_errors(check: _Check) -> None:
    """Malformed calls: the same RAC_BADARG / RAC_RESET text, and nothing written."""
    store, core = check.store, check.store.core
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    check.fork()
    good = core.add_ack(run, _acks_of(run)["create_incident"])
    keys, args = list(good.keys), list(good.args)

    def changed(index: int, value: Any) -> tuple[list[Any], list[Any]]:
        return keys, [*args[:index], value, *args[index + 1 :]]

    bad = {
        "ttl 0": changed(0, 0),
        "no token": changed(1, ""),
        "run count": changed(2, 2),
        "empty ack id": changed(5, ""),
        "key without |": changed(6, "nopipe"),
        "ok flag": changed(7, "9"),
        "ack count": changed(4, 2),
        "maxlen": changed(len(args) - 2, 0),
        "no epoch": changed(len(args) - 1, ""),
        "other epoch": changed(len(args) - 1, "not-the-epoch"),
        "key count": (keys[:-1], args),
    }
    for label, call in bad.items():
        outcome = check.call(label, call)
        if outcome[0] != "error":
            raise NotEquivalentError(f"{label}: the current script accepted it: {outcome!r}")
    check.compare_data("errors")


SCENARIOS = (_scenario_single, _scenario_batches, _scenario_errors)


def _send(store: AuditStore, call: ScriptCall) -> Any:
    return store.client.execute_command(*_command(store, call))


def check_equivalence(client: redis.Redis, variants: dict[str, Variant]) -> dict[str, int]:
    """Run :data:`SCENARIOS` through every variant beside ``current``; calls compared each.

    Raises :class:`NotEquivalentError` at the first difference.
    """
    store = AuditStore(
        client, prefix=f"levereq{uuid.uuid4().hex[:6]}", shards=1, allow_no_persistence=True
    )
    others = {n: v for n, v in variants.items() if not n.startswith("empty") and n != "current"}
    check = _Check(client, store, others, variants["current"], {})
    for scenario in SCENARIOS:
        scenario(check)
    if check.seen != {0, 1, 2, 3}:
        raise NotEquivalentError(f"the scenarios reached only the outcomes {sorted(check.seen)}")
    events: Any = client.xrange(store.core.keys.findings(0))
    verdicts = {fields[b"type"] for _, fields in events}
    if not {b"COMPLETE", b"INCOMPLETE"} <= verdicts:
        raise NotEquivalentError(f"the scenarios pushed only the verdicts {sorted(verdicts)}")
    for prefix in [check.prefix, *(check.copy_prefix(n) for n in others)]:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    return check.compared


# -- server time --------------------------------------------------------------------


@dataclass(frozen=True)
class SpeedSizes:
    blocks: int
    singles: int
    """Single acks per variant per block."""
    batches: int
    """Calls of 100 per variant per block."""


FULL_SPEED = SpeedSizes(blocks=10, singles=300, batches=5)
QUICK_SPEED = SpeedSizes(blocks=3, singles=40, batches=1)


def measure_speed(
    client: redis.Redis, variants: dict[str, Variant], sizes: SpeedSizes
) -> dict[str, dict[str, dict[str, Any]]]:
    """Server µs per ack of every variant, single and in calls of 100, side by side."""
    store = AuditStore(
        client, prefix=f"leverspeed{uuid.uuid4().hex[:6]}", allow_no_persistence=True
    )
    core = store.core
    phases: dict[str, tuple[Callable[[int], list[float]], Readings]] = {}
    for side, per_block, size in (("single", sizes.singles, 1), ("batch", sizes.batches, BATCH)):
        for name, variant in variants.items():
            if name.startswith("empty"):
                run = uuid.uuid4()
                fixed = core.add_acks(run, [ack_for(run, i) for i in range(size)])
                calls = [fixed] * (per_block * sizes.blocks)
            elif side == "single":
                items = pending_acks(store, per_block * sizes.blocks)
                calls = [core.add_ack(item.run_id, item.ack) for item in items]
            else:
                items = pending_acks(store, per_block * sizes.blocks * BATCH, per_run=BATCH)
                calls = [
                    core.add_acks(chunk[0].run_id, [item.ack for item in chunk])
                    for chunk in chunks(items, BATCH)
                ]

            def send(
                block: int,
                variant: Variant = variant,
                calls: list[ScriptCall] = calls,
                per_block: int = per_block,
                size: int = size,
            ) -> int:
                for call in calls[block * per_block : (block + 1) * per_block]:
                    variant.send(client, call.keys, call.args)
                return per_block * size

            phases[f"{side}/{name}"] = timed(client, send, variant.command)
    interleaved(sizes.blocks, [phase for phase, _ in phases.values()])
    found: dict[str, dict[str, dict[str, Any]]] = {"single": {}, "batch": {}}
    for key, (_, readings) in phases.items():
        side, name = key.split("/", 1)
        found[side][name] = readings.summary()
    for variants_found in found.values():
        base = variants_found["current"]["script_us"]
        before = variants_found[BEFORE]["script_us"]
        for stats in variants_found.values():
            stats["ratio_to_current"] = stats["script_us"] / base
            stats["ratio_to_before"] = stats["script_us"] / before
    return found


def measure_embedded(sizes: SpeedSizes) -> dict[str, Any]:
    """The library on the embedded server (fakeredis + lupa): equivalence, and the wall
    time of a single ack beside the current script's, interleaved, in process."""
    client = create_embedded_client()
    variants = load_embedded_variants(client)
    compared = check_equivalence(client, variants)
    store = AuditStore(client, prefix="leverembedded", allow_no_persistence=True)
    per_block = max(1, sizes.singles // 4)  # an embedded ack costs ~5 Redis ones
    phases = []
    for variant in variants.values():
        items = pending_acks(store, per_block * sizes.blocks)
        calls = [store.core.add_ack(item.run_id, item.ack) for item in items]

        def phase(
            block: int, variant: Variant = variant, calls: list[ScriptCall] = calls
        ) -> list[float]:
            return time_each(
                lambda call: variant.send(client, call.keys, call.args),
                calls[block * per_block : (block + 1) * per_block],
            )

        phases.append(phase)
    samples = interleaved(sizes.blocks, phases)
    p50 = {name: statistics.median(s) for name, s in zip(variants, samples, strict=True)}
    return {
        "equivalence_calls_compared": compared,
        "acks_per_variant": per_block * sizes.blocks,
        "p50_us": p50,
        "fcall_over_current": p50["fcall"] / p50["current"],
        "current_over_before": p50["current"] / p50[BEFORE],
    }


# -- memory -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunContent:
    """What the store holds for one standard run once its four acks are in."""

    run: uuid.UUID
    exp: dict[bytes, bytes]
    st: dict[bytes, bytes]
    acks: list[bytes]
    ackid: dict[bytes, bytes]


class _Remembered:
    """A design whose written runs are kept, to read their contents afterwards."""

    def __init__(self, design: memory_per_run.Ours) -> None:
        self.design = design
        self.stream_cap = design.stream_cap
        self.runs: list[uuid.UUID] = []

    def write(self, count: int) -> list[uuid.UUID]:
        self.runs = self.design.write(count)
        return self.runs

    def keys_of(self, run: uuid.UUID) -> dict[str, str]:
        return self.design.keys_of(run)

    def streams(self) -> tuple[int, int, int]:
        return self.design.streams()


def _contents(client: redis.Redis, design: _Remembered) -> list[RunContent]:
    """Every written run's keys, read back (the due set must be gone: all four answered)."""
    found = []
    for start in range(0, len(design.runs), memory_per_run.PIPELINE_RUNS):
        runs = design.runs[start : start + memory_per_run.PIPELINE_RUNS]
        pipe = client.pipeline(transaction=False)
        for run in runs:
            keys = design.keys_of(run)
            pipe.hgetall(keys["exp"])
            pipe.hgetall(keys["st"])
            pipe.lrange(keys["acks"], 0, -1)
            pipe.hgetall(keys["ackid"])
            pipe.exists(keys["due"])
        replies = pipe.execute()
        for i, run in enumerate(runs):
            exp, st, acks, ackid, due = replies[5 * i : 5 * i + 5]
            if due or len(exp) != 4 or len(acks) != 4 or len(ackid) != 4:
                raise RuntimeError(f"run {run} is not a settled standard run")
            found.append(RunContent(run, exp, st, acks, ackid))
    return found


def _slim(encoded: bytes, run_id_too: bool = False) -> bytes:
    """An encoded expectation without its domain and action (and run id): left as empty
    strings, so the array keeps its positions; a reader would take them from the field
    name (and the key name)."""
    items = msgspec.msgpack.decode(encoded)
    if msgspec.msgpack.encode(items) != encoded:
        raise RuntimeError("an expectation does not re-encode to the same bytes")
    items[1] = items[2] = ""
    if run_id_too:
        items[0] = ""
    return msgspec.msgpack.encode(items)


@dataclass(frozen=True)
class Layout:
    """A way to lay a run out in keys."""

    name: str
    one_hash: bool = False
    """Expectations, statuses and ack ids as fields of one hash (``e:``, ``s:``, ``a:``)."""
    short_ids: bool = False
    """The run id in key names as 22 characters of base64url instead of 36 of text."""
    slim_expectations: bool = False
    """Expectations stored without the domain and action of their field name."""
    no_run_id: bool = False
    """Expectations stored without their run id either (the key names it)."""
    listpack_value: int | None = None
    """A server setting, not the store's: ``hash-max-listpack-value`` while it is written."""


LAYOUTS = (
    Layout("current layout, rewritten (check)"),
    Layout("one hash per run (+ acks list)", one_hash=True),
    Layout("run id as 22-char base64url", short_ids=True),
    Layout("expectations without domain/action", slim_expectations=True),
    Layout("all three", one_hash=True, short_ids=True, slim_expectations=True),
    Layout(
        "all three, expectations without run id too",
        one_hash=True,
        short_ids=True,
        slim_expectations=True,
        no_run_id=True,
    ),
    Layout("current layout, server hash-max-listpack-value 128", listpack_value=128),
    Layout(
        "all three, server hash-max-listpack-value 128",
        one_hash=True,
        short_ids=True,
        slim_expectations=True,
        listpack_value=128,
    ),
)


def short_id(run: uuid.UUID) -> str:
    """The run id's 16 bytes as 22 characters of unpadded base64url."""
    return base64.urlsafe_b64encode(run.bytes).rstrip(b"=").decode()


class Rewritten:
    """Standard runs' contents written with plain commands in one :class:`Layout`."""

    stream_cap = 0

    def __init__(
        self, client: redis.Redis, layout: Layout, contents: list[RunContent], ttl_ms: int
    ) -> None:
        self.client, self.layout, self.contents, self.ttl_ms = client, layout, contents, ttl_ms
        self.keyspace = KeySpace("mem", 16)

    def keys_of(self, run: uuid.UUID) -> dict[str, str]:
        """The run's keys by kind, in this layout."""
        base = self.keyspace.for_run(str(run)).pending.removesuffix("pending")
        name = short_id(run) if self.layout.short_ids else str(run)
        kinds = ("run", "acks") if self.layout.one_hash else ("exp", "st", "acks", "ackid")
        return {kind: f"{base}{kind}:{name}" for kind in kinds}

    def _hashes(self, content: RunContent) -> dict[str, dict[bytes, bytes]]:
        exp = content.exp
        if self.layout.slim_expectations:
            exp = {name: _slim(value, self.layout.no_run_id) for name, value in exp.items()}
        if not self.layout.one_hash:
            return {"exp": exp, "st": content.st, "ackid": content.ackid}
        one: dict[bytes, bytes] = {}
        for tag, fields in ((b"e:", exp), (b"s:", content.st), (b"a:", content.ackid)):
            one.update({tag + field: value for field, value in fields.items()})
        return {"run": one}

    def write(self, count: int) -> list[uuid.UUID]:
        """The first ``count`` contents, pipelined; every key with the store's TTL."""
        for start in range(0, count, memory_per_run.PIPELINE_RUNS):
            pipe = self.client.pipeline(transaction=False)
            for content in self.contents[start : min(count, start + memory_per_run.PIPELINE_RUNS)]:
                keys = self.keys_of(content.run)
                for kind, fields in self._hashes(content).items():
                    pipe.hset(keys[kind], mapping=fields)  # type: ignore[arg-type]
                pipe.rpush(keys["acks"], *content.acks)
                for key in keys.values():
                    pipe.pexpire(key, self.ttl_ms)
            pipe.execute()
        return [content.run for content in self.contents[:count]]

    def streams(self) -> tuple[int, int, int]:
        """None here: the findings events are the same in every layout (added after)."""
        return 0, 0, 0


def _encodings(client: redis.Redis, keys: dict[str, str]) -> dict[str, str]:
    return {
        kind: client.object("encoding", key).decode()
        for kind, key in keys.items()
        if client.exists(key)
    }


AT = f"bytes_per_run_at_{memory_per_run.AT_RUNS}"


def measure_memory(count: int) -> dict[str, dict[str, Any]]:
    """Bytes and keys per standard run in each layout, the store's and the original's."""
    found: dict[str, dict[str, Any]] = {}
    with redis_server() as server:
        client = server.client()
        try:
            design = _Remembered(memory_per_run.Ours(client))
            ours = memory_per_run._side(client, design, count)
            ours["encodings"] = _encodings(client, design.keys_of(design.runs[0]))
            found["current (store-written)"] = ours
            contents = _contents(client, design)
            ttl_ms = design.design.store.core.ttl_seconds * 1000
            entries = ours["findings_stream_entries"]
            stream_share = 0.0
            if entries:
                at_runs = min(memory_per_run.AT_RUNS, ours["findings_stream_cap"])
                stream_share = ours["findings_stream_bytes"] / entries * at_runs
                stream_share /= memory_per_run.AT_RUNS
            setting = "hash-max-listpack-value"
            default_value = str(client.config_get(setting)[setting])
            for layout in LAYOUTS:
                client.flushall()
                listpack_value = layout.listpack_value or default_value
                client.config_set(setting, listpack_value)
                rewritten = Rewritten(client, layout, contents, ttl_ms)
                side = memory_per_run._side(client, rewritten, count)
                client.config_set(setting, default_value)
                side["encodings"] = _encodings(client, rewritten.keys_of(contents[0].run))
                side["findings_stream_share_per_run"] = stream_share
                side[AT] += stream_share
                found[layout.name] = side
            client.flushall()
            found["original (two JSON strings)"] = memory_per_run._side(
                client, memory_per_run.Original(client), count
            )
        finally:
            client.close()
    # A rewritten layout is compared with the current layout rewritten the same way (the
    # store-written runs and their rewrite differ by the method's noise, a few %).
    original = found["original (two JSON strings)"][AT]
    store_written = found["current (store-written)"][AT]
    rewritten_current = found[LAYOUTS[0].name][AT]
    for name, side in found.items():
        is_rewritten = name in {layout.name for layout in LAYOUTS}
        side["ratio_to_original"] = side[AT] / original
        side["ratio_to_current"] = side[AT] / (rewritten_current if is_rewritten else store_written)
    return found


# -- the run ------------------------------------------------------------------------

FULL_MEMORY_RUNS = 20_000
QUICK_MEMORY_RUNS = 2_000


def run(quick: bool = False, memory_runs: int | None = None) -> dict[str, Any]:
    """Equivalence, server time and memory; everything found (the JSON file's content)."""
    started = time.time()
    load_start = _load()
    with redis_server() as server:
        client = server.client()
        try:
            variants = load_variants(client)
            equivalence = check_equivalence(client, variants)
            speed = measure_speed(client, variants, QUICK_SPEED if quick else FULL_SPEED)
            version = client.info("server")["redis_version"]
        finally:
            client.close()
    embedded = measure_embedded(QUICK_SPEED if quick else FULL_SPEED)
    runs = memory_runs or (QUICK_MEMORY_RUNS if quick else FULL_MEMORY_RUNS)
    memory = measure_memory(runs)
    return {
        "quick": quick,
        "redis_version": version,
        "load_average": {"start": load_start, "end": _load()},
        "seconds": round(time.time() - started, 1),
        "equivalence_calls_compared": equivalence,
        "skips_adopted": {
            name: {"now": [now for now, _ in pairs], BEFORE: [before for _, before in pairs]}
            for name, pairs in SKIPS.items()
        },
        "not_skipped": NOT_SKIPPED,
        "speed": speed,
        "embedded": embedded,
        "memory": memory,
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def report(found: dict[str, Any]) -> str:
    """The figures as two Markdown tables."""
    single, batch = found["speed"]["single"], found["speed"]["batch"]
    lines = [
        "| variant | server µs per single ack | / current | / before adoption"
        " | per ack, calls of 100 | / current | / before adoption"
        " | server CPU µs per single ack |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in single:
        one, hundred = single[name], batch[name]
        lines.append(
            f"| {name} | {one['script_us']:.2f} | {one['ratio_to_current']:.2f}"
            f" | {one['ratio_to_before']:.2f} | {hundred['script_us']:.2f}"
            f" | {hundred['ratio_to_current']:.2f} | {hundred['ratio_to_before']:.2f}"
            f" | {one['server_cpu_us']:.1f} |"
        )
    lines += [
        "",
        "| layout | bytes per run at 1M | / current (same method) | / original | keys per run"
        " | MEMORY USAGE per run | encodings |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, side in found["memory"].items():
        encodings = ", ".join(f"{k} {v}" for k, v in side.get("encodings", {}).items())
        lines.append(
            f"| {name} | {side[AT]:,.0f} | {side['ratio_to_current']:.2f}"
            f" | {side['ratio_to_original']:.2f} | {side['keys_per_run']:.2f}"
            f" | {side['memory_usage_per_run']:,.0f} | {encodings} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server_levers")
    parser.add_argument("--quick", action="store_true", help="fewer blocks and runs (< 60 s)")
    parser.add_argument("--output", default="server-levers.json", help="JSON file of the figures")
    options = parser.parse_args(argv)
    found = run(quick=options.quick)
    with open(options.output, "w", encoding="utf-8") as out:
        json.dump(found, out, indent=2, default=str)
    print(report(found))
    calls = found["equivalence_calls_compared"]
    print(f"\nequivalent to the current script: {calls}")
    embedded = found["embedded"]
    compared, p50 = embedded["equivalence_calls_compared"], embedded["p50_us"]
    print(
        "embedded server (fakeredis + lupa): fcall and before adoption equivalent"
        f" ({compared['fcall']} and {compared[BEFORE]} calls compared);"
        f" single ack p50 {p50['current']:.0f} µs through EVALSHA,"
        f" {p50['fcall']:.0f} µs through FCALL ({embedded['fcall_over_current']:.2f}),"
        f" {p50[BEFORE]:.0f} µs before adoption (current / before"
        f" {embedded['current_over_before']:.2f})"
    )
    print(f"load average {found['load_average']}, {found['seconds']} s; JSON: {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
