"""Phase A's send-path lever, before beside after in every run: the direct send against
redis-py's ``Redis.execute_command``, and the client's CPU per ack against a PING's.

Two stores on the run's Redis, each on a client of its own: one on a plain
``redis.Redis`` (its script calls go out through :class:`rac_store.direct.DirectSender`),
one on a ``redis.Redis`` subclass whose ``execute_command`` only calls redis-py's (so
:func:`rac_store.direct.direct_sender` leaves it on ``execute_command``: the hot path as it
was; the subclass adds one Python call, ~0.1 µs). A third client PINGs through redis-py.
Interleaved blocks of ``add_ack`` and of ``add_acks`` calls of 100 (answering PENDING
expectations) and of PINGs; per block the process's CPU time too, so the client's CPU per
call is measured beside its latency. The detail holds, for each send, the batch figure's
ratio (acks/s in calls of 100 over single acks, from the p50s): a cheaper single ack
lowers it even when batches got cheaper too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from rac_store import AuditStore

from .context import BATCH, Bench
from .figures import _in_blocks
from .measure import interleaved, percentile, time_each, time_repeat
from .report import Figure
from .workload import chunks, pending_acks


class ExecuteCommandClient(redis.Redis):
    """A ``redis.Redis`` whose ``execute_command`` is its own: the store keeps redis-py's path."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """redis-py's ``execute_command``, unchanged."""
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


Phase = Callable[[int], list[float]]


def _batches_in_blocks(store: AuditStore, blocks: int, per_block: int) -> Phase:
    """A phase timing ``per_block`` add_acks calls of BATCH acks (PENDING) per block."""
    acks = pending_acks(store, BATCH * per_block * (blocks + 1), per_run=BATCH)
    batches = [(chunk[0].run_id, [item.ack for item in chunk]) for chunk in chunks(acks, BATCH)]
    for run, items in batches[:per_block]:  # warm up
        store.add_acks(run, items)
    batches = batches[per_block:]
    return lambda b: time_each(
        lambda batch: store.add_acks(*batch), batches[b * per_block : (b + 1) * per_block]
    )


def measure(bench: Bench) -> dict[str, dict[str, float]]:
    """p50 and client CPU per call of add_ack and of add_acks of 100 (direct, execute_command),
    and of PING."""
    per, blocks = bench.sizes.latency_block, bench.sizes.latency_blocks
    direct = AuditStore(redis.Redis.from_url(bench.url), prefix=bench.namespace("lvd"))
    plain = AuditStore(ExecuteCommandClient.from_url(bench.url), prefix=bench.namespace("lve"))
    pinger = bench.client()
    sides: dict[str, Phase] = {}
    cpu: dict[str, float] = {}
    batches_per_block = max(1, per // 20)
    for name, store in (("direct", direct), ("execute_command", plain)):
        acks = pending_acks(store, per * (blocks + 1))
        for item in acks[:per]:  # warm up
            store.add_ack(item.run_id, item.ack)
        sides[name] = _in_blocks(store, acks[per:], per)
        sides[f"{name}_batch"] = _batches_in_blocks(store, blocks, batches_per_block)
    sides["ping"] = lambda b: time_repeat(pinger.ping, per)

    def timed(name: str) -> Phase:
        def phase(b: int) -> list[float]:
            started = time.process_time()
            samples = sides[name](b)
            cpu[name] = cpu.get(name, 0.0) + time.process_time() - started
            return samples

        return phase

    names = list(sides)
    samples = interleaved(blocks, [timed(name) for name in names])
    for store in (direct, plain):
        store.close()
    pinger.close()
    return {
        name: {
            "p50_us": percentile(found, 0.5),
            "p99_us": percentile(found, 0.99),
            "client_cpu_us": cpu[name] / len(found) * 1e6,
        }
        for name, found in zip(names, samples, strict=True)
    }


def figures(bench: Bench) -> list[Figure]:
    """The direct send over execute_command (p50, client CPU), and add_ack's CPU over PING's."""
    found = measure(bench)
    direct, before, ping = found["direct"], found["execute_command"], found["ping"]
    for name in ("direct", "execute_command"):  # the batch figure's ratio, for each send
        single, batch = found[name]["p50_us"], found[f"{name}_batch"]["p50_us"]
        found[name]["batch_ratio"] = BATCH * single / batch
    return [
        Figure(
            "direct_send_p50",
            "add_ack p50: direct send / redis-py execute_command (phase A)",
            direct["p50_us"],
            before["p50_us"],
            "us",
            None,
            found,
        ),
        Figure(
            "direct_send_cpu",
            "  client CPU per add_ack: direct send / execute_command",
            direct["client_cpu_us"],
            before["client_cpu_us"],
            "us",
            None,
        ),
        Figure(
            "direct_send_batch_p50",
            f"  add_acks of {BATCH} p50: direct send / execute_command",
            found["direct_batch"]["p50_us"],
            found["execute_command_batch"]["p50_us"],
            "us",
            None,
        ),
        Figure(
            "client_cpu_vs_ping",
            "  client CPU per add_ack / per redis-py PING",
            direct["client_cpu_us"],
            ping["client_cpu_us"],
            "us",
            None,
        ),
    ]
