"""Run a store script at a server time the test knows to the millisecond.

Redis has no clock a client can set, so a test that must put ``now == due``
cannot choose *now*; it can choose *due*. One ``MULTI``/``EXEC`` holds three
scripts that run back to back, with no other client in between:

1. a *setup* script reads the server clock and writes what the test pins
   relative to it (a due score ``now + offset``, a key TTL of ``target`` ms);
2. the production script under test, sent by its text exactly as the store
   sends it after NOSCRIPT (``EVAL``), reading the clock itself;
3. a *check* script reads the clock again.

Both clocks a script can read are watched: ``TIME`` (milliseconds, what
``now_ms()`` in ``lua/includes/common.lua`` reads) and the clock behind key
TTLs (a sentinel key's ``PTTL``, set in step 1 and read in step 3). When step 3
reads exactly what step 1 read, neither clock ticked in between, so the
production script saw the very millisecond the setup used: the attempt counts.
Otherwise (the transaction straddled a millisecond) the attempt is thrown away
and the test tries again with fresh data. This works the same on a real
redis-server (whatever clock it caches for scripts or transactions) and on the
embedded one, whose clock the helper holds still during the transaction: its
scripts run in Python, and slowed down (coverage tracing, a busy machine) a
transaction there can outlast every millisecond.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from rac_store.embedded import is_embedded
from rac_store.scripts import ScriptCall, load_scripts

from .skewed_clock import embedded_clock_held

T = TypeVar("T")

SENTINEL_TTL_MS = 3_600_000
ATTEMPTS = 200
"""Attempts before a pinned call gives up; a few straddle a millisecond, not 200 in a row."""

_CLOCKS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

SETUP_DUE = (
    _CLOCKS
    + """
-- KEYS[1] sentinel, KEYS[2] a due zset; ARGV[1] member, ARGV[2] offset (ms) from now
redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return { now, redis.call('PTTL', KEYS[1]) }
"""
)

SETUP_TTL = (
    _CLOCKS
    + """
-- KEYS[1] sentinel, KEYS[2..] keys whose TTL becomes ARGV[1] ms exactly
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
return { now, redis.call('PTTL', KEYS[1]) }
"""
)

CHECK = (
    _CLOCKS
    + """
return { now, redis.call('PTTL', KEYS[1]) }
"""
)


@dataclass(frozen=True)
class Pinned:
    """The production script's reply, and the server time (ms) it ran at."""

    reply: Any
    now_ms: int


def sentinel_key(call: ScriptCall) -> str:
    """A key in the same hash slot as the call's keys (``{shard}`` of its first key)."""
    head = str(call.keys[0])
    tag = head[head.index("{") : head.index("}") + 1] if "{" in head else ""
    return f"clock-sentinel:{tag}"


def run_pinned(
    client: Any, call: ScriptCall, setup: str, setup_keys: Sequence[str], setup_args: Sequence[Any]
) -> Pinned | None:
    """``setup`` then ``call`` in one transaction; None when a clock ticked in between."""
    embedded = is_embedded(client)
    loaded = load_scripts(embedded)[call.script]
    sentinel = sentinel_key(call)
    pipe = client.pipeline(transaction=True)
    keys = [sentinel, *setup_keys]
    pipe.execute_command("EVAL", setup, len(keys), *keys, *setup_args, SENTINEL_TTL_MS)
    pipe.execute_command(*loaded.command(call, by_body=True))
    pipe.execute_command("EVAL", CHECK, 1, sentinel)
    # The embedded server runs its scripts in Python: slowed down (coverage, a busy machine)
    # its transaction can outlast every millisecond, so its clock is held for it.
    with embedded_clock_held() if embedded else nullcontext():
        before, reply, after = pipe.execute()
    client.delete(sentinel)
    # The sentinel's TTL was set first: reading all of it back at the end means the TTL
    # clock did not tick since; the same ``TIME`` means the other clock did not either.
    if [int(v) for v in after] != [int(before[0]), SENTINEL_TTL_MS]:
        return None
    return Pinned(reply, int(before[0]))


def pin_due(client: Any, call: ScriptCall, due_key: str, member: str, offset: int) -> Pinned | None:
    """Run ``call`` with ``member`` due at exactly ``now + offset`` in ``due_key``."""
    return run_pinned(client, call, SETUP_DUE, [due_key], [member, offset])


def pin_ttl(client: Any, call: ScriptCall, keys: Sequence[str], ttl_ms: int) -> Pinned | None:
    """Run ``call`` with every key of ``keys`` at exactly ``ttl_ms`` left to live."""
    return run_pinned(client, call, SETUP_TTL, keys, [ttl_ms])


def until_pinned(attempt: Callable[[], T | None], attempts: int = ATTEMPTS) -> T:
    """The first result of ``attempt()`` that is not None (each attempt uses fresh data)."""
    for _ in range(attempts):
        result = attempt()
        if result is not None:
            return result
    raise AssertionError(f"the server clock ticked inside each of {attempts} transactions")
