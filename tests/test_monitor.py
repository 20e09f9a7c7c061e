"""Watch a real server (MONITOR): every mutation arrives inside a script."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis

from rac_store import AuditStore, create_domain_ack, create_run_expectations

from .support.targets import ServerTarget

READS = {"LRANGE", "EXISTS", "ZRANGEBYSCORE", "TIME", "PING", "HELLO", "CLIENT", "INFO", "CONFIG"}
SCRIPTING = {"EVALSHA", "EVAL", "SCRIPT"}


def _commands(nodes: Sequence[Callable[[], redis.Redis]], work: Any) -> list[tuple[bool, str]]:
    """(inside a script?, command) for every command any of ``nodes`` saw during ``work``."""
    seen: list[tuple[bool, str]] = []
    stop = threading.Event()

    def listen(client: redis.Redis, ready: threading.Event) -> None:
        with client.monitor() as monitor:
            ready.set()
            for event in monitor.listen():
                if stop.is_set() and "STOP-MARKER" in event["command"]:
                    return
                seen.append(
                    (event["client_type"] == "lua", event["command"].split(" ", 1)[0].upper())
                )

    threads = []
    for node in nodes:
        ready = threading.Event()
        thread = threading.Thread(target=listen, args=(node(), ready), daemon=True)
        thread.start()
        ready.wait(5)
        threads.append(thread)
    time.sleep(0.1)
    work()
    stop.set()
    for node in nodes:
        with node() as client:
            client.echo("STOP-MARKER")
    for thread in threads:
        thread.join(10)
    return seen


def test_no_mutation_bypasses_a_script(server: ServerTarget) -> None:
    store = AuditStore(server.client)

    def work() -> None:
        run = uuid.uuid4()
        store.add_expectations(run, create_run_expectations(run))
        store.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
        store.add_acks(run, [create_domain_ack(run, "logs", "start_trace", error="x")])
        store.update_expectation_status(run, "policies", "evaluate_policy", "MISSING")
        store.get_expectations(run)
        store.get_acks(run)
        store.get_pending_run_ids()
        store.load_from_redis(run)
        store.clear_run(run)

    seen = _commands(server.primaries, work)  # every primary of a cluster
    direct = {cmd for in_lua, cmd in seen if not in_lua}
    in_scripts = {cmd for in_lua, cmd in seen if in_lua}
    assert "EVALSHA" in direct
    assert {"HSETNX", "RPUSH", "ZADD", "DEL"} <= in_scripts  # the monitor really saw script work
    assert direct - READS - SCRIPTING - {"ECHO"} == set(), direct
