"""Issue 15, item 5: a store notices that the server lost its data.

Every writable store reads (or makes) one epoch per shard when it opens, and every
write script checks its shard's epoch before its first write. A server restarted
without persistence (or flushed) has none: acks are refused with StoreResetError
instead of being recorded as drift against nothing. At start-up the store warns
about a server without an AOF and refuses it in ``AOS_MODE=prod`` unless allowed.
All against real redis-servers; the restart test with worker processes (sync and
asyncio) acking while the server is killed and restarted empty.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import warnings
from collections import Counter
from typing import Any

import pytest

from rac_store import (
    AsyncAuditStore,
    AuditReconciler,
    AuditStatus,
    AuditStore,
    PersistenceWarning,
    RetryPolicy,
    StoreResetError,
    UnsupportedServerError,
    create_domain_ack,
    create_run_expectations,
)

from ..support.ack_load import AckLoad
from ..support.redis_server import RedisServer, running_redis

pytestmark = pytest.mark.redis_only

ACKS = 6000


@pytest.mark.parametrize("backend", ["embedded", "redis", "redis-acl"], indirect=True)
def test_every_write_after_a_flush_is_refused_and_writes_nothing(
    store_factory: Any, raw_client: Any
) -> None:
    store = store_factory()
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    raw_client.flushall()  # what a restart without persistence leaves
    writes = {
        "add_ack": lambda: store.add_ack(run, create_domain_ack(run, "logs", "start_trace")),
        "add_acks": lambda: store.add_acks(run, [create_domain_ack(run, "x", "y")]),
        "add_expectations": lambda: store.add_expectations(run, create_run_expectations(run)),
        "update_expectation_status": lambda: store.update_expectation_status(
            run, "logs", "start_trace", AuditStatus.MISSING
        ),
        "clear_run": lambda: store.clear_run(run),
        "end_run": lambda: AuditReconciler(store).end_run(run),
    }
    for name, write in writes.items():
        with pytest.raises(StoreResetError, match="is gone: the server lost its data"):
            write()
        assert raw_client.dbsize() == 0, name
    # A store opened now starts a new epoch and works; the old one stays refused.
    fresh = store_factory()
    assert fresh.add_ack(run, create_domain_ack(run, "logs", "start_trace")) == "DRIFT"
    with pytest.raises(StoreResetError, match="was made anew"):
        store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))


def test_the_async_store_refuses_too(redis_server: RedisServer, redis_client: Any) -> None:
    run = uuid.uuid4()

    async def scenario() -> BaseException:
        async with AsyncAuditStore.from_url(redis_server.url) as store:
            await store.add_expectations(run, create_run_expectations(run))
            redis_client.flushall()
            try:
                await store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
            except StoreResetError as exc:
                return exc
        raise AssertionError("the ack was accepted on a reset server")

    assert "RAC_RESET" in str(asyncio.run(scenario()))
    assert redis_client.dbsize() == 0


@pytest.mark.slow
def test_a_restart_without_persistence_mid_run_refuses_acks_instead_of_drift() -> None:
    """Worker processes — 2 sync, and 1 asyncio with 16 auto-pipelined callers — ack
    declared expectations while the server is killed and restarted empty. Every ack
    after the restart must be refused with StoreResetError: none may come back DRIFT
    (every ack answers a declared expectation), and the new server must hold none."""
    with running_redis() as server:
        store = AuditStore(server.client())
        runs = [uuid.uuid4() for _ in range(6)]
        for run in runs:
            store.add_expectations(run, create_run_expectations(run, run_timeout_ms=600_000))
        targets = [("incidents", "create_incident"), ("policies", "evaluate_policy")]
        targets += [("logs", "start_trace"), ("orchestrator", "finalize_run")]
        jobs = [(str(runs[i % 6]), *targets[i % 4]) for i in range(ACKS)]
        retry = RetryPolicy(attempts=40, base_delay=0.05, max_delay=0.25)
        loads = [
            AckLoad(server.url, jobs[: ACKS // 2], workers=2, retry=retry),
            AckLoad(server.url, jobs[ACKS // 2 :], workers=1, mode="async", retry=retry),
        ]
        try:
            for load in loads:
                load.launch()  # every worker opens its store (reads the epochs) first
            for load in loads:
                load.release()
            while sum(load.progress.value for load in loads) < ACKS // 3:
                time.sleep(0.005)
            restarted_at = sum(load.progress.value for load in loads)
            server.kill()
            time.sleep(0.3)
            server.restart()
            reports = [load.join() for load in loads]
        finally:
            for load in loads:
                load.stop()
        outcomes = reports[0].outcomes + reports[1].outcomes
        errors = Counter(error.split(":")[0] for r in reports for error in r.errors)
        after = AuditStore(server.client())  # opens a new epoch on the empty server
        left = sum(len(after.get_acks(run)) for run in runs)
        print(
            f"\n[reset] restart after {restarted_at} of {ACKS} calls: outcomes {dict(outcomes)},"
            f" errors {dict(errors)}; acks on the restarted server: {left}"
        )
        assert outcomes["DRIFT"] == 0  # before the fix: every ack after the restart
        assert outcomes["RECORDED"] >= ACKS // 3 - 16  # those before the restart
        assert errors["StoreResetError"] > 0  # every worker kept acking after it
        assert set(errors) == {"StoreResetError"}
        assert sum(outcomes.values()) + errors["StoreResetError"] == ACKS
        assert left == 0  # nothing was recorded against the empty server
        for report in reports:  # the sync and the asyncio workers both met the restart
            assert any(error.startswith("StoreResetError") for error in report.errors)


# -- start-up: persistence ---------------------------------------------------------------
@pytest.fixture
def strict_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No RAC_ALLOW_NO_PERSISTENCE (the suite sets it for its own servers)."""
    monkeypatch.delenv("RAC_ALLOW_NO_PERSISTENCE", raising=False)
    return monkeypatch


def test_a_server_without_an_aof_warns(redis_client: Any, strict_environment: Any) -> None:
    with pytest.warns(PersistenceWarning, match="appendonly yes"):
        AuditStore(redis_client)


@pytest.mark.parametrize("how", ["refused", "option", "environment"])
def test_prod_refuses_a_server_without_an_aof_unless_allowed(
    redis_client: Any, strict_environment: pytest.MonkeyPatch, how: str
) -> None:
    strict_environment.setenv("AOS_MODE", "prod")
    if how == "refused":
        with pytest.raises(UnsupportedServerError, match="AOS_MODE=prod: the server has no AOF"):
            AuditStore(redis_client)
        assert redis_client.dbsize() == 0  # refused before writing anything
        return
    if how == "environment":
        strict_environment.setenv("RAC_ALLOW_NO_PERSISTENCE", "true")
    options = {"allow_no_persistence": True} if how == "option" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # allowed: no warning either
        store = AuditStore(redis_client, **options)
    assert store.server_time_ms() > 0


def test_prod_accepts_a_server_with_an_aof(strict_environment: pytest.MonkeyPatch) -> None:
    strict_environment.setenv("AOS_MODE", "prod")
    with running_redis(["--appendonly", "yes"]) as server:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            store = AuditStore(server.client())
        run = uuid.uuid4()
        assert store.add_ack(run, create_domain_ack(run, "d", "a")) == "DRIFT"

        async def start() -> None:
            async with AsyncAuditStore.from_url(server.url):
                pass

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            asyncio.run(start())


def test_the_async_store_refuses_in_prod_too(
    redis_server: RedisServer, redis_client: Any, strict_environment: pytest.MonkeyPatch
) -> None:
    strict_environment.setenv("AOS_MODE", "prod")

    async def start() -> None:
        async with AsyncAuditStore.from_url(redis_server.url):
            pass

    with pytest.raises(UnsupportedServerError, match="no AOF"):
        asyncio.run(start())
    assert redis_client.dbsize() == 0
