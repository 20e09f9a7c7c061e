"""Memory per run: the four standard expectations and their four acks, ours beside the original.

On a redis-server of its own (``used_memory`` deltas need a server nobody else
writes to), it writes ``memory_runs`` runs (full: 100,000) the way a store does —
``add_expectations`` of :func:`~rac_store.create_run_expectations`, then one
``add_acks`` of an ack per expectation, calls pipelined 500 runs at a time — and
reads ``INFO memory`` and ``DBSIZE`` before and after. Then it empties the server
and writes as many runs with the original design (:class:`~benchmarks.baseline.
LegacyAuditStore`: ``add_expectations``, then four ``add_ack``, each a ``SETEX`` of
the whole JSON list, leaving two strings per run).

Per run it reports: the ``used_memory`` delta over the runs (everything: key names,
objects, values, the main and expires tables' entries and slots), the keys, and
``MEMORY USAGE`` of each kind of key (a sample of runs), so that what a key costs
beyond its ``MEMORY USAGE`` (the expires entry, table slots) is visible too.

The figure is for 1,000,000 runs, **extrapolated** from the measured count: the
delta per run with the two hash tables' slots taken out (8 bytes per slot, tables of
the next power of two of the key count, as Redis 7 sizes them), plus those tables'
slots at 1M runs; and for our findings streams, which keep at most ``findings_maxlen``
entries per shard, the measured bytes per entry times the entries 1M runs leave.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Protocol

import redis

from rac_store import AuditStore, create_domain_ack, create_run_expectations

from .baseline import LegacyAuditStore
from .context import Bench
from .report import Figure, Goal
from .servers import redis_server

AT_RUNS = 1_000_000
PIPELINE_RUNS = 500
SAMPLE_RUNS = 200
SLOT_BYTES = 8
"""A hash table slot: one pointer (64-bit)."""
TABLES = 2
"""Every key sits in the main table and, having a TTL, in the expires table."""


def _used_memory(client: redis.Redis) -> int:
    """``used_memory`` once it holds still (the server's cron ends incremental rehashing)."""
    last = -1
    for _ in range(20):
        time.sleep(0.1)
        now = int(client.info("memory")["used_memory"])
        if now == last:
            return now
        last = now
    return last


def _table_slots(keys: int) -> int:
    """Slots of one Redis 7 hash table holding ``keys`` keys (the next power of two)."""
    size = 4
    while size < keys:
        size *= 2
    return size


def _slot_bytes(keys: int) -> int:
    return TABLES * SLOT_BYTES * _table_slots(keys)


def _standard_run() -> tuple[uuid.UUID, list[Any], list[Any]]:
    run = uuid.uuid4()
    expectations = create_run_expectations(run)
    acks = [create_domain_ack(run, e.domain, e.action) for e in expectations]
    return run, expectations, acks


class Ours:
    """rac_store's layout: the runs, their keys, and the shards' findings streams."""

    kinds = ("exp", "st", "due", "acks", "ackid")

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.store = AuditStore(client, prefix="mem")
        warm, exps, acks = _standard_run()  # loads both scripts
        self.store.add_expectations(warm, exps)
        self.store.add_acks(warm, acks)
        self.store.clear_run(warm)
        client.delete(*self.store.core.keys.all_findings())  # the measured runs write them anew
        self.stream_cap = self.store.core.keys.shards * self.store.core.findings_maxlen
        """Entries the findings streams keep at most (``findings_maxlen`` per shard)."""

    def write(self, count: int) -> list[uuid.UUID]:
        """``count`` standard runs, each declared then acked, pipelined as the store sends them."""
        core, scripts = self.store.core, self.store._scripts
        runs = []
        for start in range(0, count, PIPELINE_RUNS):
            pipe = self.client.pipeline(transaction=False)
            for _ in range(min(PIPELINE_RUNS, count - start)):
                run, exps, acks = _standard_run()
                runs.append(run)
                for call in (core.add_expectations(run, exps), core.add_acks(run, acks)):
                    command = scripts[call.script].command(call)
                    pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            pipe.execute()
        return runs

    def keys_of(self, run: uuid.UUID) -> dict[str, str]:
        """The run's keys by kind."""
        keys = self.store.core.keys.for_run(str(run)).run_keys
        return dict(zip(self.kinds, keys, strict=True))

    def streams(self) -> tuple[int, int, int]:
        """MEMORY USAGE, entries and keys of the findings streams."""
        keys = [k for k in self.store.core.keys.all_findings() if self.client.exists(k)]
        usage = sum(int(self.client.memory_usage(k, samples=0) or 0) for k in keys)
        return usage, sum(int(self.client.xlen(k)) for k in keys), len(keys)


class Original:
    """The original design: two JSON strings per run, rewritten whole on every write."""

    stream_cap = 0

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.legacy = LegacyAuditStore(client, prefix="mem")

    def write(self, count: int) -> list[uuid.UUID]:
        """``count`` standard runs: add_expectations, then four add_ack (five SETEX)."""
        runs = []
        for start in range(0, count, PIPELINE_RUNS):
            pipe = self.client.pipeline(transaction=False)
            legacy = LegacyAuditStore(pipe, prefix="mem")
            for _ in range(min(PIPELINE_RUNS, count - start)):
                run, exps, acks = _standard_run()
                runs.append(run)
                legacy.add_expectations(run, exps)
                for ack in acks:
                    legacy.add_ack(run, ack)
            pipe.execute()
        return runs

    def keys_of(self, run: uuid.UUID) -> dict[str, str]:
        """The run's two keys."""
        return {
            "expectations": self.legacy.expectations_key(run),
            "acks": self.legacy.acks_key(run),
        }

    def streams(self) -> tuple[int, int, int]:
        """It has none."""
        return 0, 0, 0


class Design(Protocol):
    """What :func:`_side` measures: a way to write runs and name their keys."""

    stream_cap: int

    def write(self, count: int) -> list[uuid.UUID]: ...

    def keys_of(self, run: uuid.UUID) -> dict[str, str]: ...

    def streams(self) -> tuple[int, int, int]: ...


def _usage_by_kind(client: redis.Redis, design: Design, runs: list[uuid.UUID]) -> dict[str, float]:
    """Mean MEMORY USAGE per run of each kind of key, over ``runs``."""
    totals: dict[str, int] = {}
    for run in runs:
        for kind, key in design.keys_of(run).items():
            usage = client.memory_usage(key, samples=0)
            if usage is not None:
                totals[kind] = totals.get(kind, 0) + int(usage)
    return {kind: total / len(runs) for kind, total in sorted(totals.items())}


def _side(client: redis.Redis, design: Design, count: int) -> dict[str, Any]:
    """Write the runs; what they cost in all, per run and per kind of key."""
    memory, keys = _used_memory(client), int(client.dbsize())
    runs = design.write(count)
    memory = _used_memory(client) - memory
    keys = int(client.dbsize()) - keys
    stream_bytes, stream_entries, stream_keys = design.streams()
    run_keys = (keys - stream_keys) / count
    own = memory - stream_bytes - _slot_bytes(keys)  # each run's keys, outside the slots
    by_kind = _usage_by_kind(client, design, runs[:SAMPLE_RUNS])
    at_runs_stream = 0.0
    if stream_entries:
        at_runs_stream = stream_bytes / stream_entries * min(AT_RUNS, design.stream_cap)
    at_runs_slots = _slot_bytes(round(run_keys * AT_RUNS))
    return {
        "runs": count,
        "used_memory_delta": memory,
        "bytes_per_run_measured": memory / count,
        "keys_per_run": run_keys,
        "memory_usage_per_run_by_key": by_kind,
        "memory_usage_per_run": sum(by_kind.values()),
        "beyond_memory_usage_per_key": (own / count - sum(by_kind.values())) / run_keys,
        "table_slot_bytes_per_run": _slot_bytes(keys) / count,
        "findings_stream_bytes": stream_bytes,
        "findings_stream_entries": stream_entries,
        "findings_stream_cap": design.stream_cap,
        f"bytes_per_run_at_{AT_RUNS}": own / count + (at_runs_stream + at_runs_slots) / AT_RUNS,
    }


def measure(count: int) -> dict[str, dict[str, Any]]:
    """Both designs' memory per run, one after the other on an emptied server of their own."""
    with redis_server() as server:
        client = server.client()
        try:
            ours = _side(client, Ours(client), count)
            client.flushall()
            original = _side(client, Original(client), count)
        finally:
            client.close()
    return {"ours": ours, "original": original}


def figures(bench: Bench) -> list[Figure]:
    """Bytes per run at 1M runs and keys per run, ours over the original design's."""
    found = measure(bench.sizes.memory_runs)
    ours, original = found["ours"], found["original"]
    at = f"bytes_per_run_at_{AT_RUNS}"
    return [
        Figure(
            "memory_per_run",
            "memory per run (4 expectations + 4 acks) at 1M runs / original's",
            ours[at],
            original[at],
            "B",
            Goal("<=", 0.5),
            found,
        ),
        Figure(
            "keys_per_run",
            "  keys per run / original's",
            ours["keys_per_run"],
            original["keys_per_run"],
            "keys",
            None,
        ),
    ]
