"""The server's time per ack (``INFO commandstats``), single and in batches of 100.

Only on a server the runner started: on a ``--redis-url`` server other clients'
commands would count too, so the step gives no figures there.

For single acks and for ``add_acks`` calls of 100, each answering PENDING
expectations of fresh runs, it reads ``INFO commandstats`` and ``INFO cpu``
before and after: the script's microseconds per ack (``usec`` of ``EVALSHA`` over
the acks it recorded, the issue's measure), the server's whole CPU time per ack
(reading the request, the script, writing the reply), and the commands each ack
ran. Beside each, an empty script (``return {0}``) called with the very same KEYS
and ARGV: the server time any one-script design pays before its first command.

Where the script's own time goes (the profile phase B starts from), with the same
arguments: prefixes of ``add_acks.lua``'s text, each ending in ``return {0}``, cut at
the lines :data:`STAGES` names (when the script still has them): its definitions (the
included helpers, its constants and argument checks of the header), then the
validation of every ack. The script's own text in ``lua/`` is never changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from rac_store import AuditStore
from rac_store.scripts import Script

from .breakdown import commandstats, server_cpu, since
from .context import BATCH, Bench
from .report import Figure, say
from .workload import ack_for, chunks, pending_acks

EMPTY_SCRIPT = "return {0}"
STAGES = (
    ("definitions", "-- Validate everything before the first write."),
    ("validated", "local now = now_ms()"),
)
"""(stage, the first line it leaves out): ``add_acks.lua`` up to that line, then ``return {0}``."""


def _measured(client: Any, send: Callable[[], Any], acks: int) -> dict[str, Any]:
    """``send()`` between two readings of the server's stats, per ack."""
    before, cpu = commandstats(client), server_cpu(client)
    send()
    cpu = server_cpu(client) - cpu
    delta = since(before, commandstats(client))
    calls, usec = delta.get("evalsha", (0, 0))
    inner = {
        name: round(n / acks, 2)
        for name, (n, _) in sorted(delta.items())
        if n and name not in ("evalsha", "info")
    }
    return {
        "acks": acks,
        "script_calls": calls,
        "script_us_per_ack": usec / acks,
        "server_cpu_us_per_ack": cpu * 1e6 / acks,
        "commands_per_ack": inner,
        "commands_us_per_ack": sum(
            u for name, (_, u) in delta.items() if name not in ("evalsha", "info")
        )
        / acks,
    }


def _script_us(store: AuditStore, text: str, argv: tuple[Any, ...], calls: int) -> float:
    """commandstats µs per call of the script ``text`` sent with ``argv`` (numkeys, KEYS, ARGV)."""
    client = store.client
    sha = client.script_load(text)
    before = commandstats(client)
    for _ in range(calls):
        client.evalsha(sha, *argv)
    calls_made, usec = since(before, commandstats(client)).get("evalsha", (0, 0))
    return usec / max(calls_made, 1)


def stages(store: AuditStore, argv: tuple[Any, ...], calls: int) -> dict[str, float]:
    """µs per call of the empty script and of each stage of ``add_acks.lua`` with ``argv``."""
    text = store._scripts[Script.ADD_ACKS].text
    found = {"empty": _script_us(store, EMPTY_SCRIPT, argv, calls)}
    for stage, first_left_out in STAGES:
        cut = text.find(first_left_out)
        if cut > 0:
            found[stage] = _script_us(store, text[:cut] + "return {0}\n", argv, calls)
    return found


def _argv(store: AuditStore, acks: int) -> tuple[Any, ...]:
    """numkeys, KEYS and ARGV of an add_acks call of ``acks`` acks of one run."""
    run = uuid.uuid4()
    call = store.core.add_acks(run, [ack_for(run, i) for i in range(acks)])
    return (len(call.keys), *call.keys, *call.args)


def measure(bench: Bench) -> dict[str, dict[str, Any]]:
    """Single acks and batches of 100, with the empty script's time beside each."""
    count = max(BATCH, bench.sizes.server_time_acks // BATCH * BATCH)
    store = bench.store("srvtime")
    warm = pending_acks(store, BATCH, per_run=BATCH)
    store.add_acks(warm[0].run_id, [item.ack for item in warm])  # the script is loaded
    singles = pending_acks(store, count)
    batches = [
        (chunk[0].run_id, [item.ack for item in chunk])
        for chunk in chunks(pending_acks(store, count, per_run=BATCH), BATCH)
    ]

    def send_singles() -> None:
        for item in singles:
            store.add_ack(item.run_id, item.ack)

    def send_batches() -> None:
        for run, acks in batches:
            store.add_acks(run, acks)

    single = _measured(store.client, send_singles, count)
    single["stages_us_per_call"] = stages(store, _argv(store, 1), count)
    batch = _measured(store.client, send_batches, count)
    batch["stages_us_per_call"] = stages(store, _argv(store, BATCH), len(batches))
    return {"single": single, "batch": batch}


def figures(bench: Bench) -> list[Figure]:
    """Server µs per ack, single and in batches, over an empty script with the same arguments."""
    if not bench.own_server:
        say("    skipped: INFO commandstats counts only on a server the runner started")
        return []
    found = measure(bench)
    single, batch = found["single"], found["batch"]
    for name, side in found.items():
        per_call = side["script_us_per_ack"] * side["acks"] / max(side["script_calls"], 1)
        parts = ", ".join(f"{k} {v:.1f}" for k, v in side["stages_us_per_call"].items())
        say(
            f"    {name}: script {per_call:.1f} µs per call ({parts}; its commands"
            f" {side['commands_us_per_ack'] * side['acks'] / max(side['script_calls'], 1):.1f})"
        )
    return [
        Figure(
            "server_single",
            "server µs per single ack (commandstats) / empty script, same args",
            single["script_us_per_ack"],
            single["stages_us_per_call"]["empty"],
            "us",
            None,
            single,
        ),
        Figure(
            "server_batch",
            f"  same per ack, batches of {BATCH} / empty script, same args, per ack",
            batch["script_us_per_ack"],
            batch["stages_us_per_call"]["empty"] / BATCH,
            "us",
            None,
            batch,
        ),
    ]
