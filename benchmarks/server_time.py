"""The server's time per ack (``INFO commandstats``), single and in batches of 100.

Only on a server the runner started: on a ``--redis-url`` server other clients'
commands would count too, so the step gives no figures there.

Single acks and ``add_acks`` calls of 100, each answering PENDING expectations of
fresh runs, are sent in interleaved blocks (``server_time_blocks``), and around each
block ``INFO commandstats`` and ``INFO cpu`` are read: the script's microseconds per
ack (``usec`` of ``EVALSHA`` over the acks the block recorded, the issue's measure),
the server's whole CPU time per ack (reading the request, the script, writing the
reply), and the commands each ack ran. Each figure is the median of its blocks: a
burst of other load on a shared machine (commandstats counts wall time, preemption
included) spoils a block, not the figure.

Interleaved with them, with the very same KEYS and ARGV: an empty script (``return
{0}``), the server time any one-script design pays before its first command; and, to
show where the script's own time goes (the profile phase B starts from), prefixes of
``add_acks.lua``'s text ending in ``return {0}``, cut at the lines :data:`STAGES`
names (when the script still has them): its definitions (the included helpers, its
constants and the header's argument checks), then the validation of every ack. The
script's own text in ``lua/`` is never changed.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rac_store import AuditStore
from rac_store.scripts import Script

from .breakdown import commandstats, server_cpu, since
from .context import BATCH, Bench
from .measure import interleaved
from .report import Figure, say
from .workload import ack_for, chunks, pending_acks

EMPTY_SCRIPT = "return {0}"
STAGES = (
    ("definitions", "-- Validate everything before the first write."),
    ("validated", "local now = now_ms()"),
)
"""(stage, the first line it leaves out): ``add_acks.lua`` up to that line, then ``return {0}``."""
STAGE_CALLS = 10
"""Calls of each stage per block with a batch's arguments (single-ack ones: one per ack)."""


@dataclass
class Readings:
    """What the server's stats say about each block of one phase, per unit (ack or call)."""

    script_us: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    commands_us: list[float] = field(default_factory=list)
    commands: dict[str, int] = field(default_factory=dict)
    units: int = 0

    def summary(self) -> dict[str, Any]:
        """Medians over the blocks, and the commands per unit over all of them."""
        return {
            "units": self.units,
            "blocks": len(self.script_us),
            "script_us": statistics.median(self.script_us),
            "script_us_blocks_min_max": [min(self.script_us), max(self.script_us)],
            "server_cpu_us": statistics.median(self.cpu_us),
            "commands_us": statistics.median(self.commands_us),
            "commands": {k: round(n / self.units, 2) for k, n in sorted(self.commands.items())},
        }


def timed(
    client: Any, send_block: Callable[[int], int], command: str = "evalsha"
) -> tuple[Callable[[int], list[float]], Readings]:
    """A phase for :func:`interleaved` reading the server's stats around each block.

    ``send_block(b)`` sends block ``b`` and returns its units (acks, or script calls);
    ``command`` is the one whose ``usec`` is the script's time (``fcall`` for a function).
    """
    readings = Readings()

    def phase(block: int) -> list[float]:
        before, cpu = commandstats(client), server_cpu(client)
        units = send_block(block)
        cpu = server_cpu(client) - cpu
        delta = since(before, commandstats(client))
        inner = {n: v for n, v in delta.items() if v[0] and n not in (command, "info")}
        readings.script_us.append(delta.get(command, (0, 0))[1] / units)
        readings.cpu_us.append(cpu * 1e6 / units)
        readings.commands_us.append(sum(usec for _, usec in inner.values()) / units)
        for name, (calls, _) in inner.items():
            readings.commands[name] = readings.commands.get(name, 0) + calls
        readings.units += units
        return readings.script_us[-1:]

    return phase, readings


def _argv(store: AuditStore, acks: int) -> tuple[Any, ...]:
    """numkeys, KEYS and ARGV of an add_acks call of ``acks`` acks of one run."""
    run = uuid.uuid4()
    call = store.core.add_acks(run, [ack_for(run, i) for i in range(acks)])
    return (len(call.keys), *call.keys, *call.args)


def stage_scripts(store: AuditStore) -> dict[str, str]:
    """The empty script and each stage of ``add_acks.lua`` the script still has."""
    text = store._scripts[Script.ADD_ACKS].text
    found = {"empty": EMPTY_SCRIPT}
    for stage, first_left_out in STAGES:
        cut = text.find(first_left_out)
        if cut > 0:
            found[stage] = text[:cut] + "return {0}\n"
    return found


def measure(bench: Bench) -> dict[str, dict[str, Any]]:
    """Single acks and batches of 100, each beside the stages with the same arguments."""
    blocks = bench.sizes.server_time_blocks
    per_block = max(1, bench.sizes.server_time_acks // blocks)
    calls_per_block = max(1, per_block // BATCH)
    store = bench.store("srvtime")
    client = store.client
    warm = pending_acks(store, BATCH, per_run=BATCH)
    store.add_acks(warm[0].run_id, [item.ack for item in warm])  # the script is loaded
    singles = pending_acks(store, per_block * blocks)
    batches = [
        (chunk[0].run_id, [item.ack for item in chunk])
        for chunk in chunks(pending_acks(store, calls_per_block * blocks * BATCH, BATCH), BATCH)
    ]

    def send_singles(b: int) -> int:
        for item in singles[b * per_block : (b + 1) * per_block]:
            store.add_ack(item.run_id, item.ack)
        return per_block

    def send_batches(b: int) -> int:
        for run, acks in batches[b * calls_per_block : (b + 1) * calls_per_block]:
            store.add_acks(run, acks)
        return calls_per_block * BATCH

    phases: dict[str, tuple[Callable[[int], list[float]], Readings]] = {
        "single": timed(client, send_singles),
        "batch": timed(client, send_batches),
    }
    for side, acks, calls in (("single", 1, per_block), ("batch", BATCH, STAGE_CALLS)):
        argv = _argv(store, acks)
        for stage, text in stage_scripts(store).items():
            sha = client.script_load(text)

            def send(
                _: int, sha: str = sha, argv: tuple[Any, ...] = argv, calls: int = calls
            ) -> int:
                for _ in range(calls):
                    client.evalsha(sha, *argv)
                return calls

            phases[f"{side}_{stage}"] = timed(client, send)
    interleaved(blocks, [phase for phase, _ in phases.values()])
    found = {name: readings.summary() for name, (_, readings) in phases.items()}
    return {
        side: {
            **found[side],
            "stages_us_per_call": {
                name[len(side) + 1 :]: stats["script_us"]
                for name, stats in found.items()
                if name.startswith(f"{side}_")
            },
        }
        for side in ("single", "batch")
    }


def figures(bench: Bench) -> list[Figure]:
    """Server µs per ack, single and in batches, over an empty script with the same arguments."""
    if not bench.own_server:
        say("    skipped: INFO commandstats counts only on a server the runner started")
        return []
    found = measure(bench)
    single, batch = found["single"], found["batch"]
    for name, side in found.items():
        per_call = side["script_us"] * (BATCH if name == "batch" else 1)
        commands = side["commands_us"] * (BATCH if name == "batch" else 1)
        parts = ", ".join(f"{k} {v:.1f}" for k, v in side["stages_us_per_call"].items())
        say(
            f"    {name}: script {per_call:.1f} µs per call, median of {side['blocks']} blocks"
            f" ({parts}; its commands {commands:.1f})"
        )
    return [
        Figure(
            "server_single",
            "server µs per single ack (commandstats) / empty script, same args",
            single["script_us"],
            single["stages_us_per_call"]["empty"],
            "us",
            None,
            single,
        ),
        Figure(
            "server_batch",
            f"  same per ack, batches of {BATCH} / empty script, same args, per ack",
            batch["script_us"],
            batch["stages_us_per_call"]["empty"] / BATCH,
            "us",
            None,
            batch,
        ),
    ]
