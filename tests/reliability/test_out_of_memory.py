"""Issue 6, item 4: a server at maxmemory with noeviction.

Every write fails with StoreOutOfMemoryError and changes nothing (DEBUG DIGEST
identical), Redis refuses the write scripts up front (their ``#!lua`` first
line: commandstats count them as *rejected*, never *failed* half way), and
reads — including a new store starting up — keep working.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rac_store import (
    AuditExpectation,
    AuditReconciler,
    AuditStatus,
    AuditStore,
    StoreOutOfMemoryError,
    create_domain_ack,
    create_run_expectations,
)

from ..support.faults import command_stats, digest
from ..support.redis_server import RedisServer


@pytest.fixture
def full_server() -> Iterator[RedisServer]:
    srv = RedisServer(["--maxmemory-policy", "noeviction"]).start()
    yield srv
    srv.cleanup()


def fill_to_maxmemory(client: Any) -> int:
    """Put maxmemory just under what is used: the server is full from now on."""
    pipe = client.pipeline(transaction=False)
    for i in range(200):
        pipe.set(f"filler:{i}", b"x" * 4096)
    pipe.execute()
    used = int(client.info("memory")["used_memory"])
    limit = used - 256 * 1024
    client.config_set("maxmemory", limit)
    return limit


def writes(store: AuditStore, run: uuid.UUID) -> dict[str, Callable[[], Any]]:
    """Every public write of the store and the reconciler, each one that would change data.

    ``run`` must hold an overdue expectation (for the sweep) and a pending one
    (so that reconcile records an INCOMPLETE finding).
    """
    fresh = uuid.uuid4()
    reconciler = AuditReconciler(store)
    return {
        "sweep": reconciler.sweep,
        "reconcile (records a finding)": lambda: reconciler.reconcile(run),
        "add_expectations (new run)": lambda: store.add_expectations(
            fresh, create_run_expectations(fresh)
        ),
        "add_expectations (more)": lambda: store.add_expectations(
            run, [AuditExpectation(run, "extra", "step")]
        ),
        "add_ack": lambda: store.add_ack(run, create_domain_ack(run, "logs", "start_trace")),
        "add_acks": lambda: store.add_acks(
            run, [create_domain_ack(run, "ghost", f"a{i}") for i in range(10)]
        ),
        "update_expectation_status": lambda: store.update_expectation_status(
            run, "policies", "evaluate_policy", AuditStatus.FAILED
        ),
        "clear_run": lambda: store.clear_run(run),
    }


def with_overdue_expectation(store: AuditStore, run: uuid.UUID) -> uuid.UUID:
    overdue = AuditExpectation(run, "overdue", "step", deadline_ms=0)
    store.add_expectations(run, [*create_run_expectations(run), overdue])
    time.sleep(0.005)
    return run


def test_full_server_refuses_every_write_changes_nothing_and_still_reads(
    full_server: RedisServer,
) -> None:
    client = full_server.client()
    store = AuditStore(client)
    warm = uuid.uuid4()  # every script in the server's cache, so no NOSCRIPT below
    for call in writes(store, with_overdue_expectation(store, warm)).values():
        call()
    run = with_overdue_expectation(store, uuid.uuid4())
    store.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
    calls = writes(store, run)
    expectations, acks = store.get_expectations(run), store.get_acks(run)
    pending = store.get_pending_run_ids()

    limit = fill_to_maxmemory(client)
    before, stats_before = digest(client), command_stats(client)["evalsha"]
    for name, call in calls.items():
        with pytest.raises(StoreOutOfMemoryError, match="maxmemory"):
            call()
        assert digest(client) == before, name
    stats_after = command_stats(client)["evalsha"]

    # Refused before running (the #!lua flag), never failing half way.
    assert stats_after["rejected_calls"] - stats_before["rejected_calls"] == len(calls)
    assert stats_after["failed_calls"] == stats_before["failed_calls"]
    # Only reconcile's snapshot (read_run.lua, flagged no-writes) ran.
    assert stats_after["calls"] == stats_before["calls"] + 1

    # Reads keep working, and so does a new store (start-up checks + layout check).
    assert store.get_expectations(run) == expectations
    assert store.get_acks(run) == acks
    assert store.load_from_redis(run)
    assert store.get_pending_run_ids() == pending
    assert store.server_time_ms() > 0
    reader = AuditStore(full_server.client())
    assert reader.get_acks(run) == acks
    assert digest(client) == before
    print(f"\n[oom] maxmemory={limit} writes refused={len(calls)} digest unchanged")

    # And it recovers once memory is freed.
    client.config_set("maxmemory", 0)
    assert store.add_ack(run, create_domain_ack(run, "logs", "start_trace")) == "RECORDED"
