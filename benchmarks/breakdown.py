"""Where add_ack's time goes: the server's command stats, the client's profile, the parts."""

from __future__ import annotations

import cProfile
import pstats
from typing import Any

import hiredis

from rac_store.scripts import Script

from .context import Bench
from .measure import percentile, time_each, time_repeat
from .workload import pending_acks

_PER_CALL_SCRIPT = "for i = 1, 10 do redis.call('PTTL', KEYS[1]) end return {0}"


CommandStats = dict[str, tuple[int, int]]
"""Calls and microseconds of each command, from ``INFO commandstats``."""


def commandstats(client: Any) -> CommandStats:
    """The server's calls and microseconds so far, by command (lower-case name)."""
    stats = client.info("commandstats")
    return {name[len("cmdstat_") :]: (int(v["calls"]), int(v["usec"])) for name, v in stats.items()}


def server_cpu(client: Any) -> float:
    """The server's CPU seconds so far (user + system, ``INFO cpu``)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def since(before: CommandStats, after: CommandStats) -> CommandStats:
    """The calls and microseconds of each command between two readings."""
    return {
        name: (calls - before.get(name, (0, 0))[0], usec - before.get(name, (0, 0))[1])
        for name, (calls, usec) in after.items()
    }


def server_side(bench: Bench, count: int) -> dict[str, Any]:
    """EVALSHA time per add_ack on the server and the commands each ack runs (INFO commandstats)."""
    store = bench.store("prof")
    acks = pending_acks(store, count + 50)
    for item in acks[:50]:
        store.add_ack(item.run_id, item.ack)
    before = commandstats(store.client)
    for item in acks[50:]:
        store.add_ack(item.run_id, item.ack)
    delta = since(before, commandstats(store.client))
    evalsha_calls, evalsha_usec = delta.get("evalsha", (0, 0))
    inner = {
        name: round(calls / count, 2)
        for name, (calls, _) in sorted(delta.items())
        if calls and name not in ("evalsha", "info")
    }
    return {
        "evalsha_usec_per_ack": round(evalsha_usec / max(1, evalsha_calls), 2),
        "commands_per_ack": inner,
        "commands_usec_per_ack": round(
            sum(u for n, (_, u) in delta.items() if n not in ("evalsha", "info")) / count, 2
        ),
    }


def _category(key: tuple[str, int, str]) -> str:
    filename, _, function = key
    if "recv" in function or "sendall" in function or "select" in function:
        return "socket: send + wait for the reply"
    if "hiredis" in function or "hiredis" in filename:
        return "hiredis (pack, parse)"
    if "/redis/" in filename:
        return "redis-py"
    if "/rac_store/" in filename:
        return "rac_store"
    if "msgspec" in function or "uuid" in filename:
        return "msgspec + uuid"
    return "other"


def client_side(bench: Bench, count: int) -> dict[str, float]:
    """cProfile of ``count`` add_acks, summed by layer, in µs per ack (with the profiler's cost)."""
    store = bench.store("cprof")
    acks = pending_acks(store, count + 50)
    for item in acks[:50]:
        store.add_ack(item.run_id, item.ack)
    profiler = cProfile.Profile()
    profiler.enable()
    for item in acks[50:]:
        store.add_ack(item.run_id, item.ack)
    profiler.disable()
    totals: dict[str, float] = {}
    collected: Any = pstats.Stats(profiler)
    for key, (_, _, own_time, _, _) in collected.stats.items():
        totals[_category(key)] = totals.get(_category(key), 0.0) + own_time
    return {name: round(seconds / count * 1e6, 2) for name, seconds in sorted(totals.items())}


def python_build(bench: Bench, count: int) -> float:
    """p50 of building one add_ack call in the sans-I/O core (validation, encoding, keys)."""
    store = bench.store("build")
    acks = pending_acks(None, count)
    core = store.core
    return percentile(time_each(lambda item: core.add_ack(item.run_id, item.ack), acks), 0.5)


def client_parts(bench: Bench, count: int) -> dict[str, float]:
    """p50 (µs) of each part of the client's work for one add_ack, each timed alone.

    Building the call (validation, msgpack, keys, call token), laying it out as a
    command, packing it (hiredis), and borrowing and returning a pooled connection
    (redis-py's ``get_connection`` + ``release``); the rest of an ack's client time
    is the socket (send, wait, receive) and reading the reply.
    """
    store = bench.store("parts")
    acks = pending_acks(None, count)
    core = store.core
    calls = [core.add_ack(item.run_id, item.ack) for item in acks]
    loaded = store._scripts[Script.ADD_ACKS]
    commands: list[Any] = [loaded.command(call) for call in calls]
    pool = store.client.connection_pool

    def borrow() -> None:
        pool.release(pool.get_connection())

    def p50(samples: list[float]) -> float:
        return round(percentile(samples, 0.5), 2)

    return {
        "build_call": p50(time_each(lambda item: core.add_ack(item.run_id, item.ack), acks)),
        "lay_out_command": p50(time_each(loaded.command, calls)),
        "hiredis_pack": p50(time_each(hiredis.pack_command, commands)),
        "pool_get_release": p50(time_repeat(borrow, count)),
    }


def embedded_call_cost(bench: Bench, count: int) -> dict[str, float]:
    """On the embedded server: an empty script, and the cost of one ``redis.call``."""
    store = bench.embedded_store()
    client = store.client
    empty = client.script_load("return {0}")
    ten = client.script_load(_PER_CALL_SCRIPT)
    keys = store.core.keys.for_run("00000000-0000-0000-0000-000000000000")
    empty_p50 = percentile(time_repeat(lambda: client.evalsha(empty, len(keys), *keys), count), 0.5)
    ten_p50 = percentile(time_repeat(lambda: client.evalsha(ten, len(keys), *keys), count), 0.5)
    return {
        "ping_p50_us": percentile(time_repeat(client.ping, count), 0.5),
        "empty_script_p50_us": empty_p50,
        "per_redis_call_us": (ten_p50 - empty_p50) / 10,
    }


def profile(bench: Bench) -> dict[str, Any]:
    """Every part of the profile, for the JSON file and the printed summary."""
    count = bench.sizes.profile_acks
    return {
        "server": server_side(bench, count),
        "client_cprofile_us_per_ack": client_side(bench, count),
        "python_build_p50_us": round(python_build(bench, count), 2),
        "client_parts_p50_us": client_parts(bench, count),
        "embedded": {k: round(v, 2) for k, v in embedded_call_cost(bench, count // 4).items()},
    }


def summary(data: dict[str, Any], ping_p50: float | None, ack_p50: float | None) -> list[str]:
    """Printable lines: where the time of one add_ack goes."""
    server = data["server"]
    lines = ["where add_ack's time goes:"]
    if ping_p50 is not None and ack_p50 is not None:
        lines.append(
            f"  add_ack p50 {ack_p50:.1f} µs = round trip (PING p50) {ping_p50:.1f} µs"
            f" + {ack_p50 - ping_p50:.1f} µs"
        )
    lines.append(
        f"  server: EVALSHA {server['evalsha_usec_per_ack']} µs per ack, of which its"
        f" {sum(server['commands_per_ack'].values()):.1f} commands"
        f" {server['commands_usec_per_ack']} µs: {server['commands_per_ack']}"
    )
    lines.append(
        f"  client: building the call (validate, encode, keys) p50 {data['python_build_p50_us']} µs"
    )
    parts = ", ".join(f"{k} {v}" for k, v in data["client_parts_p50_us"].items())
    lines.append(f"  client, each part alone, p50 µs: {parts}")
    parts = ", ".join(f"{k} {v}" for k, v in data["client_cprofile_us_per_ack"].items())
    lines.append(f"  client under cProfile, µs per ack (inflated by the profiler): {parts}")
    emb = data["embedded"]
    lines.append(
        f"  embedded: PING {emb['ping_p50_us']} µs, empty script {emb['empty_script_p50_us']}"
        f" µs, each redis.call {emb['per_redis_call_us']} µs"
    )
    return lines
