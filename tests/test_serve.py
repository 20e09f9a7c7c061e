"""``rac-store serve``: the embedded store shared by real processes over the Redis protocol."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from rac_store import (
    AuditReconciler,
    AuditStatus,
    AuditStore,
    InvalidTransitionError,
    ReconciliationStatus,
    StoreNotFoundError,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.serve import EmbeddedRedisServer

from .support.cli import RAC_STORE

WORKERS = 4
ACKS_PER_WORKER = 200


class Served:
    """A ``rac-store serve`` process (the installed script) and the URL it printed."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [RAC_STORE, "serve", *args, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first, self.stop()[1]
        self.url = str(json.loads(first)["url"])

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit code and stderr."""
        self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=20)
        finally:
            self.process.kill()
        return self.process.returncode, err


@pytest.fixture
def served() -> Iterator[Served]:
    server = Served("--port", "0")
    yield server
    server.stop()


def _worker(url: str, runs: list[str], worker: int) -> None:
    store = AuditStore.from_url(url)
    for i in range(ACKS_PER_WORKER):
        run = runs[i % len(runs)]
        if i < len(runs):
            store.add_ack(run, create_domain_ack(uuid.UUID(run), "incidents", "create_incident"))
        else:
            ack = create_domain_ack(uuid.UUID(run), "work", f"w{worker}-{i}")
            store.add_ack(run, ack)
            store.add_ack(run, ack)  # a duplicate must not count
    store.close()


def _ack_from_processes(url: str) -> tuple[AuditStore, list[str]]:
    store = AuditStore.from_url(url)
    runs = [str(uuid.uuid4()) for _ in range(3)]
    for run in runs:
        store.add_expectations(run, create_run_expectations(uuid.UUID(run)))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(url, runs, w)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    return store, runs


@pytest.mark.slow
def test_worker_processes_share_one_served_store(served: Served) -> None:
    assert served.url.startswith("redis://127.0.0.1:")
    store, runs = _ack_from_processes(served.url)
    acks = [ack for run in runs for ack in store.get_acks(run)]
    assert len(acks) == WORKERS * ACKS_PER_WORKER  # every ack once: none lost, none doubled
    assert len({ack.id for ack in acks}) == len(acks)
    for run in runs:
        statuses = {e.key(): e.status for e in store.get_expectations(run)}
        assert statuses[("incidents", "create_incident")] is AuditStatus.ACKED
        verdict = AuditReconciler(store).reconcile(run, record=False)
        assert verdict.status is ReconciliationStatus.INCOMPLETE  # the workers' acks are drift
    code, err = served.stop()
    assert code == 0 and "stopped" in err


@pytest.mark.slow
def test_serve_on_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "rac.sock"
    server = Served("--unix", str(path))
    try:
        assert server.url == f"unix://{path}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # only this user may connect
        store, runs = _ack_from_processes(server.url)
        assert sum(len(store.get_acks(run)) for run in runs) > 0
    finally:
        code, _ = server.stop()
    assert code == 0 and not path.exists()


def test_a_remote_host_is_refused_without_allow_remote() -> None:
    done = subprocess.run(
        [RAC_STORE, "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "refusing to serve on '0.0.0.0'" in done.stderr and "--allow-remote" in done.stderr
    bad_port = subprocess.run(
        [RAC_STORE, "serve", "--port", "70000"], capture_output=True, text=True, check=False
    )
    assert bad_port.returncode == 2 and "Traceback" not in bad_port.stderr
    accepted = EmbeddedRedisServer("0.0.0.0", 0, allow_remote=True)  # bound, never served
    accepted.shutdown()


def test_the_same_scripts_errors_and_recovery_through_the_protocol() -> None:
    with EmbeddedRedisServer() as server:
        store = AuditStore.from_url(server.url)
        run = uuid.uuid4()
        store.add_expectations(run, create_run_expectations(run))
        store.update_expectation_status(run, "logs", "start_trace", "MISSING")
        with pytest.raises(InvalidTransitionError):  # an error raised by the Lua script
            store.update_expectation_status(run, "logs", "start_trace", "PENDING")
        admin = redis.Redis.from_url(server.url, protocol=2)  # RESP2 as well as redis-py's RESP3
        admin.script_flush()
        ack = create_domain_ack(run, "incidents", "create_incident")
        assert store.add_ack(run, ack).value == "RECORDED"  # NOSCRIPT, then EVAL: recovered
        assert admin.hget("rac:meta", "shards") == b"16"
        with pytest.raises(redis.ResponseError, match="unknown command"):
            admin.execute_command("NO-SUCH-COMMAND")
        reader = AuditStore.from_url(server.url, read_only=True)
        assert [a.id for a in reader.get_acks(run)] == [ack.id]
        with pytest.raises(StoreNotFoundError):
            AuditStore.from_url(server.url, prefix="nothing-here", read_only=True)
        admin.close()


def test_a_blocking_read_waits_for_a_write_from_another_connection() -> None:
    with EmbeddedRedisServer() as server:
        store = AuditStore.from_url(server.url)
        rec = AuditReconciler(AuditStore.from_url(server.url, read_only=True))
        start = rec.findings_positions()
        run = uuid.uuid4()
        store.add_expectations(run, create_run_expectations(run))
        store.update_expectation_status(run, "logs", "start_trace", "MISSING")
        events = rec.iter_findings(since=start, follow=True, block_ms=200)
        first = next(iter(events))
        assert (first.type.value, first.run_id) == ("MISSING", str(run))


def test_a_request_that_is_not_resp_gets_an_error_and_others_are_served() -> None:
    with EmbeddedRedisServer() as server:
        assert server.port is not None
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(b"PING\r\n")  # an inline command, which a real Redis would take
            reply = raw.recv(1000)
        assert reply.startswith(b"-ERR Protocol error")
        assert redis.Redis.from_url(server.url).ping()


def test_a_stale_socket_file_is_replaced_and_a_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    with EmbeddedRedisServer(unix=path) as server:
        assert redis.Redis.from_url(server.url).ping()
        with pytest.raises(Exception, match="another server is listening"):
            EmbeddedRedisServer(unix=path)
    assert not os.path.exists(path)
