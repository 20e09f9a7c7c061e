"""The hot path's figures against PING, SET and the old design, each a ratio measured side by side.

The asyncio, cluster and sweep figures are in their own modules (:mod:`benchmarks.async_acks`,
:mod:`benchmarks.cluster_bench`, :mod:`benchmarks.sweep_cost`).
"""

from __future__ import annotations

import uuid
from typing import Any

from rac_store import AuditStore, create_domain_ack

from .breakdown import server_cpu
from .context import BATCH, DUE_RUNS, FLAT_PREFILL, MEMORY_ACKS, WORKERS, Bench
from .gang import Gang, Task
from .measure import interleaved, percentile, rate, time_each, time_repeat
from .report import Count, Figure, Goal
from .servers import served_embedded
from .workload import PendingAck, ack_for, chunks, declare, expectations_for, pending_acks

AT_MOST_110 = Goal("<=", 1.10)


def _send(store: Any) -> Any:
    """``add_ack`` of one PendingAck, on our store or the baseline."""
    return lambda item: store.add_ack(item.run_id, item.ack)


def _in_blocks(store: Any, items: list[PendingAck], per_block: int) -> Any:
    """A phase for :func:`interleaved`: block ``b`` times add_ack of its slice of ``items``."""
    send = _send(store)
    return lambda b: time_each(send, items[b * per_block : (b + 1) * per_block])


def _p(samples: list[float], q: float = 0.5) -> float:
    return percentile(samples, q)


def latency(bench: Bench) -> list[Figure]:
    """add_ack against PING on the same connection, in interleaved blocks (p50, p99)."""
    sizes = bench.sizes
    store = bench.store("lat")
    client = store.client
    n, blocks = sizes.latency_block, sizes.latency_blocks
    acks = pending_acks(store, n * blocks + n)
    for item in acks[:n]:  # warm up: script loaded, connection open, caches filled
        store.add_ack(item.run_id, item.ack)
        client.ping()
    acks = acks[n:]
    # the floor of any script-based design: an empty script with the same KEYS and ARGV
    floor_sha = client.script_load("return {0}")
    probe = store.core.add_ack(acks[0].run_id, ack_for(uuid.UUID(acks[0].run_id), 10**6))
    floor_argv = (len(probe.keys), *probe.keys, *probe.args)
    ping, ack, floor = interleaved(
        blocks,
        [
            lambda b: time_repeat(client.ping, n),
            _in_blocks(store, acks, n),
            lambda b: time_repeat(lambda: client.evalsha(floor_sha, *floor_argv), n),
        ],
    )
    detail = {"samples_each": len(ping), "ping_p50_us": _p(ping), "add_ack_p50_us": _p(ack)}
    return [
        Figure(
            "latency_p50",
            "add_ack p50 / PING p50 (same connection)",
            _p(ack),
            _p(ping),
            "us",
            AT_MOST_110,
            detail,
        ),
        Figure(
            "latency_p99",
            "add_ack p99 / PING p99 (same connection)",
            _p(ack, 0.99),
            _p(ping, 0.99),
            "us",
            AT_MOST_110,
            {"samples_each": len(ping)},
        ),
        Figure(
            "script_floor_p50",
            "  floor: empty script, same KEYS/ARGV, p50 / PING p50",
            _p(floor),
            _p(ping),
            "us",
            None,
        ),
    ]


def flat_cost(bench: Bench) -> list[Figure]:
    """add_ack p50 in a run holding 10,000 acks over fresh runs; the same for the baseline."""
    sizes = bench.sizes
    store = bench.store("flat")
    big = uuid.uuid4()
    declare(store, big, 0, FLAT_PREFILL + sizes.flat_acks)
    for start in range(0, FLAT_PREFILL, BATCH):
        store.add_acks(big, [ack_for(big, i) for i in range(start, start + BATCH)])
    big_acks = [
        PendingAck(str(big), ack_for(big, FLAT_PREFILL + i)) for i in range(sizes.flat_acks)
    ]
    fresh_acks = pending_acks(store, sizes.flat_acks, per_run=10)
    blocks = min(10, sizes.flat_acks)
    per = sizes.flat_acks // blocks
    full, fresh = interleaved(
        blocks, [_in_blocks(store, big_acks, per), _in_blocks(store, fresh_acks, per)]
    )
    ours = Figure(
        "flat_cost",
        f"add_ack p50, run with {FLAT_PREFILL:,} acks / fresh run",
        _p(full),
        _p(fresh),
        "us",
        AT_MOST_110,
        {"samples_each": len(full)},
    )

    legacy = bench.legacy("flat")
    old_big = uuid.uuid4()
    legacy.preload(old_big, [ack_for(old_big, i) for i in range(FLAT_PREFILL)])
    count = sizes.flat_legacy_acks
    old_full_acks = [
        PendingAck(str(old_big), ack_for(old_big, FLAT_PREFILL + i)) for i in range(count)
    ]
    old_fresh_acks = pending_acks(None, count, per_run=10)
    lblocks = min(4, count)
    lper = max(1, count // lblocks)
    old_full, old_fresh = interleaved(
        lblocks, [_in_blocks(legacy, old_full_acks, lper), _in_blocks(legacy, old_fresh_acks, lper)]
    )
    old = Figure(
        "flat_cost_baseline",
        "  baseline: same ratio (whole JSON list rewritten)",
        _p(old_full),
        _p(old_fresh),
        "us",
        None,
        {"samples_each": len(old_full)},
    )
    return [ours, old]


def _worker_runs(store: AuditStore, count: int, per_run: int = 50) -> tuple[str, ...]:
    runs = []
    for _ in range(max(1, count // per_run)):
        run = uuid.uuid4()
        declare(store, run, 0, per_run)
        runs.append(str(run))
    return tuple(runs)


SLOW_US = 10_000
"""A command slower than this (10 ms) is logged in SLOWLOG during the throughput rounds."""
_SLOW_NAMES = {"ours": (b"EVALSHA", b"EVAL"), "set": (b"SET",)}


class SlowLog:
    """Counts each side's commands in SLOWLOG (over ``SLOW_US``) on the benchmark's own server.

    With ``--redis-url`` somebody else's server configuration is left alone: nothing counted.
    """

    def __init__(self, bench: Bench) -> None:
        self.counts = {"ours": 0, "set": 0}
        self._admin = bench.client() if bench.own_server else None
        if self._admin is not None:
            self._admin.config_set("slowlog-log-slower-than", SLOW_US)
            self._admin.config_set("slowlog-max-len", 100_000)
            self._admin.slowlog_reset()

    def add(self, kind: str) -> None:
        """Count (and clear) the entries logged while ``kind``'s round ran."""
        if self._admin is None:
            return
        entries = self._admin.slowlog_get(100_000)
        self._admin.slowlog_reset()
        names = _SLOW_NAMES[kind]
        self.counts[kind] += sum(e["command"].split(b" ", 1)[0].upper() in names for e in entries)

    def figures(self) -> list[Count]:
        """The count beside SET's, or nothing on a server that is not ours."""
        if self._admin is None:
            return []
        self._admin.close()
        title = f"{WORKERS} processes: store scripts over 10 ms in SLOWLOG (SET beside)"
        return [Count("slowlog_10ms", title, self.counts["ours"], self.counts["set"], 0)]


def throughput(bench: Bench, gang: Gang) -> list[Figure | Count]:
    """8 processes: add_ack/s over raw redis-py SET/s, rounds alternating which goes first.

    Each side's rate is the median of its rounds (a busy moment spoils one round only).
    Meanwhile the server's SLOWLOG counts each side's commands over 10 ms (a store
    script's work per call is bounded, so none should be; a busy machine can still
    hold any command that long, which the SET count beside it shows).
    Beside the rates, where the CPU goes: the workers' CPU time per operation (client)
    and, on a server the runner started, the server's (``INFO cpu``), medians of rounds.
    """
    sizes = bench.sizes
    store = bench.store("tput")
    prefix = store.core.keys.prefix
    per_worker = max(50, sizes.throughput_acks // 50 * 50)
    rates: dict[str, list[float]] = {"ours": [], "set": []}
    slowlog = SlowLog(bench)
    cpu: dict[str, list[float]] = {
        f"{k}_{side}": [] for k in rates for side in ("client", "server")
    }
    for round_ in range(sizes.throughput_rounds):
        order = ("set", "ours") if round_ % 2 == 0 else ("ours", "set")
        for kind in order:
            tasks = [
                Task(
                    kind,
                    bench.url,
                    prefix,
                    _worker_runs(store, per_worker) if kind == "ours" else (),
                    per_worker,
                    w,
                )
                for w in range(WORKERS)
            ]
            server = server_cpu(store.client) if bench.own_server else 0.0
            done = gang.measure(tasks)
            if bench.own_server:
                server = server_cpu(store.client) - server
                cpu[f"{kind}_server"].append(server * 1e6 / done.operations)
            rates[kind].append(rate(done.operations, done.span))
            cpu[f"{kind}_client"].append(done.client_cpu * 1e6 / done.operations)
            slowlog.add(kind)
    ours, ref = _p(rates["ours"]), _p(rates["set"])
    split = {f"{name}_cpu_us_per_op": _p(values) for name, values in cpu.items() if values}
    detail = {
        "per_worker_per_round": per_worker,
        "rounds": sizes.throughput_rounds,
        **rates,
        **split,
    }
    found: list[Figure | Count] = [
        Figure(
            "throughput_8p",
            f"{WORKERS} processes: add_ack/s / redis-py SET/s",
            ours,
            ref,
            "ops/s",
            Goal(">=", 0.90),
            detail,
        ),
        *slowlog.figures(),
    ]
    if bench.own_server:
        found.append(
            Figure(
                "throughput_8p_cpu",
                "  CPU per op, client + server: add_ack / SET",
                split["ours_client_cpu_us_per_op"] + split["ours_server_cpu_us_per_op"],
                split["set_client_cpu_us_per_op"] + split["set_server_cpu_us_per_op"],
                "us",
                None,
                split,
            )
        )
    return found


def batch(bench: Bench) -> list[Figure]:
    """add_acks in batches of 100 over single add_ack, acks/s, in interleaved rounds.

    Each side's rate is acks per call over the median call time (a machine busy
    with others stalls some calls; the median is not moved by them).
    """
    sizes = bench.sizes
    store = bench.store("batch")
    per_round = max(BATCH, sizes.batch_acks // sizes.batch_rounds // BATCH * BATCH)
    singles = pending_acks(store, per_round * sizes.batch_rounds, per_run=BATCH)
    batches = [
        (chunk[0].run_id, [item.ack for item in chunk])
        for chunk in chunks(pending_acks(store, per_round * sizes.batch_rounds, BATCH), BATCH)
    ]
    per_batch_round = per_round // BATCH
    send = _send(store)

    def single_round(r: int) -> list[float]:
        return time_each(send, singles[r * per_round : (r + 1) * per_round])

    def batch_round(r: int) -> list[float]:
        mine = batches[r * per_batch_round : (r + 1) * per_batch_round]
        return time_each(lambda b: store.add_acks(*b), mine)

    one, many = interleaved(sizes.batch_rounds, [single_round, batch_round])
    count = per_round * sizes.batch_rounds
    ours = rate(BATCH, _p(many) / 1e6)
    ref = rate(1, _p(one) / 1e6)
    return [
        Figure(
            "batch",
            f"add_acks, batches of {BATCH}: acks/s / single add_ack acks/s",
            ours,
            ref,
            "ops/s",
            Goal(">=", 10),
            {
                "acks_each": count,
                "rounds": sizes.batch_rounds,
                "single_p50_us": _p(one),
                "batch_call_p50_us": _p(many),
                "acks_per_s_from_totals": [
                    rate(count, sum(many) / 1e6),
                    rate(count, sum(one) / 1e6),
                ],
            },
        )
    ]


def _run_bytes(store: AuditStore, run: uuid.UUID) -> dict[str, int]:
    """MEMORY USAGE of each existing key of a run, and of its pending-index entry."""
    client = store.client
    keys = store.core.keys.for_run(str(run))
    sizes = {}
    for key in keys.run_keys:
        usage = client.memory_usage(key, samples=0)
        if usage is not None:
            sizes[key.split(":")[2]] = int(usage)
    index = keys.pending
    score = client.zscore(index, str(run))
    if score is not None:  # the entry's share: the index with it minus without it
        with_entry = int(client.memory_usage(index, samples=0) or 0)
        client.zrem(index, str(run))
        without = int(client.memory_usage(index, samples=0) or 0)
        client.zadd(index, {str(run): score})
        sizes["pending_index_entry"] = with_entry - without
    return sizes


def memory(bench: Bench) -> list[Figure]:
    """Bytes per ack of a run of 100 acks, every key counted, over the baseline's JSON list."""
    store, legacy = bench.store("mem"), bench.legacy("mem")
    client = store.client
    run = uuid.uuid4()
    acks = [create_domain_ack(run, "bench", f"action_{i}") for i in range(MEMORY_ACKS)]
    for ack in acks:
        store.add_ack(run, ack)
        legacy.add_ack(run, ack)
    ours = _run_bytes(store, run)
    theirs = int(client.memory_usage(legacy.acks_key(run), samples=0) or 0)
    fig = Figure(
        "memory",
        f"bytes per ack, run of {MEMORY_ACKS} acks / baseline JSON list",
        sum(ours.values()) / MEMORY_ACKS,
        theirs / MEMORY_ACKS,
        "B",
        Goal("<=", 0.5),
        {"ours_keys": ours, "baseline_bytes": theirs},
    )

    declared = uuid.uuid4()
    exps = expectations_for(declared, 0, MEMORY_ACKS)
    store.add_expectations(declared, exps)
    legacy.add_expectations(declared, exps)
    for i in range(MEMORY_ACKS):
        ack = ack_for(declared, i)
        store.add_ack(declared, ack)
        legacy.add_ack(declared, ack)
    ours_all = _run_bytes(store, declared)
    theirs_all = sum(
        int(client.memory_usage(key, samples=0) or 0)
        for key in (legacy.acks_key(declared), legacy.expectations_key(declared))
    )
    both = Figure(
        "memory_with_expectations",
        "  same, run of 100 expectations + 100 acks, both sides",
        sum(ours_all.values()) / MEMORY_ACKS,
        theirs_all / MEMORY_ACKS,
        "B",
        None,
        {"ours_keys": ours_all, "baseline_bytes": theirs_all},
    )
    return [fig, both]


def _fill_index(store: AuditStore, due: int, later: int, now_ms: int) -> set[str]:
    """Put ``due`` runs due an hour ago and ``later`` runs due in an hour into the index."""
    client = store.client
    due_ids: set[str] = set()
    pipe = client.pipeline(transaction=False)
    pending: dict[str, dict[str, int]] = {}
    for i in range(due + later):
        run = str(uuid.uuid4())
        if i < due:
            due_ids.add(run)
            score = now_ms - 3_600_000 + i
        else:
            score = now_ms + 3_600_000 + i
        key = store.core.keys.for_run(run).pending
        pending.setdefault(key, {})[run] = score
        if len(pending[key]) >= 10_000:
            pipe.zadd(key, pending.pop(key))
            pipe.execute()
    for key, members in pending.items():
        pipe.zadd(key, members)
    pipe.execute()
    return due_ids


def pending_index(bench: Bench) -> list[Figure]:
    """Listing the 1,000 due runs among N pending over among 1,000 pending (interleaved)."""
    sizes = bench.sizes
    small, large = bench.store("idxs"), bench.store("idxl")
    now = small.server_time_ms()
    large_count = max(2 * DUE_RUNS, sizes.index_pending)
    small_due = _fill_index(small, DUE_RUNS, 0, now)
    large_due = _fill_index(large, DUE_RUNS, large_count - DUE_RUNS, now)
    for store, expected in ((small, small_due), (large, large_due)):
        listed = store.get_pending_run_ids(due_before=now, limit=DUE_RUNS)
        if set(listed) != expected:
            raise RuntimeError("the pending index listed the wrong runs")

    def listing(store: AuditStore) -> Any:
        return lambda b: time_repeat(
            lambda: store.get_pending_run_ids(due_before=now, limit=DUE_RUNS), 1
        )

    big, few = interleaved(sizes.index_rounds, [listing(large), listing(small)])
    return [
        Figure(
            "pending_index",
            f"list {DUE_RUNS:,} due runs among {large_count:,} / among {DUE_RUNS:,}",
            _p(big),
            _p(few),
            "us",
            Goal("<=", 5),
            {"rounds": sizes.index_rounds},
        )
    ]


def lost_acks(bench: Bench, gang: Gang) -> list[Count]:
    """8 processes x N acks into shared runs: acks missing afterwards, ours and the baseline's."""
    count = bench.sizes.lost_acks
    store, legacy = bench.store("lost"), bench.legacy("lost")
    runs = tuple(str(uuid.uuid4()) for _ in range(WORKERS))
    sent = WORKERS * count
    gang.run(
        [
            Task("ours_shared", bench.url, store.core.keys.prefix, runs, count, w)
            for w in range(WORKERS)
        ]
    )
    ours = sum(len(store.get_acks(run)) for run in runs)
    unique = len({a.id for run in runs for a in store.get_acks(run)})
    gang.run(
        [Task("legacy_shared", bench.url, legacy.prefix, runs, count, w) for w in range(WORKERS)]
    )
    theirs = sum(len(legacy.get_acks(run)) for run in runs)
    return [
        Count(
            "lost_acks",
            f"lost acks, {WORKERS} processes x {count:,} into shared runs",
            sent - ours,
            sent - theirs,
            0,
            {"sent": sent, "ours_stored": ours, "ours_unique": unique, "baseline_stored": theirs},
        )
    ]


def _against_redis(bench: Bench, other: AuditStore, name: str) -> tuple[list[float], list[float]]:
    """add_ack times on ``other`` and on the benchmark's Redis, interleaved blocks."""
    sizes = bench.sizes
    remote = bench.store(name)
    n, blocks = sizes.embedded_block, sizes.embedded_blocks
    other_acks = pending_acks(other, n * blocks + n)
    remote_acks = pending_acks(remote, n * blocks + n)
    for store, acks in ((other, other_acks), (remote, remote_acks)):
        for item in acks[:n]:  # warm up
            store.add_ack(item.run_id, item.ack)
    theirs, red = interleaved(
        blocks, [_in_blocks(other, other_acks[n:], n), _in_blocks(remote, remote_acks[n:], n)]
    )
    return theirs, red


def embedded(bench: Bench) -> list[Figure]:
    """Embedded add_ack p50 over real-Redis add_ack p50, interleaved blocks."""
    mem, red = _against_redis(bench, bench.embedded_store(), "emb")
    return [
        Figure(
            "embedded",
            "embedded add_ack p50 / Redis add_ack p50",
            _p(mem),
            _p(red),
            "us",
            Goal("<=", 3),
            {"samples_each": len(mem)},
        )
    ]


def served(bench: Bench) -> list[Figure]:
    """add_ack p50 through ``rac-store serve`` (its own process) over the same on redis-server."""
    with served_embedded() as url:
        store = AuditStore.from_url(url, metrics=False)
        try:
            through, red = _against_redis(bench, store, "srv")
        finally:
            store.close()
    return [
        Figure(
            "served",
            "add_ack p50 via rac-store serve / on redis-server",
            _p(through),
            _p(red),
            "us",
            None,
            {"samples_each": len(through)},
        )
    ]
