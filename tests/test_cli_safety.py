"""Operator commands that are safe to run: the installed ``rac-store`` against real servers.

Read-only commands write nothing (also as the inspector user), no command creates a
store, credentials are never printed, ``--json`` keeps stdout JSON-only, a closed
pipe ends quietly, every bad option is a usage error, and ``watch`` outlives an
outage.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from rac_store import (
    AuditExpectation,
    AuditReconciler,
    AuditStore,
    create_domain_ack,
    create_run_expectations,
)

from .conftest import ACL_PASSWORD
from .support.cli import RAC_STORE, lines, poll_file, rac_store, wait_for
from .support.cluster import LocalCluster
from .support.redis_server import RedisServer, free_port, running_redis
from .support.snapshot import snapshot

READ_ONLY = (
    ("pending",),
    ("show", "RUN"),
    ("reconcile", "RUN", "--no-record"),
    ("watch", "--no-follow"),
)
WRITING = (("sweep",), ("reconcile", "RUN"))


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return rac_store(*args, env=env)


def _with_run(command: tuple[str, ...], run: str) -> list[str]:
    return [run if part == "RUN" else part for part in command]


def _url(port: int, user: str | None = None) -> str:
    login = f"{user}:{ACL_PASSWORD}@" if user else ""
    return f"redis://{login}127.0.0.1:{port}/0"


@pytest.mark.parametrize("command", READ_ONLY + WRITING, ids=" ".join)
def test_no_command_creates_a_store(command: tuple[str, ...], redis_client: Any) -> None:
    port = redis_client.connection_pool.connection_kwargs["port"]
    args = _with_run(command, str(uuid.uuid4()))
    done = cli(*args, "--prefix", "typo", "--redis-url", _url(port))
    assert done.returncode == 3, done.stderr
    assert done.stderr == f"rac-store: no store under prefix typo at redis://127.0.0.1:{port}/0\n"
    assert snapshot(redis_client) == {}  # not even typo:meta
    AuditStore(redis_client, prefix="typo", shards=64)  # so no LayoutMismatchError later


def test_read_only_commands_write_nothing_to_a_store(redis_client: Any) -> None:
    port = redis_client.connection_pool.connection_kwargs["port"]
    store = AuditStore(redis_client)
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run, 0, 0))  # overdue and stale
    before = snapshot(redis_client)
    for command in READ_ONLY:
        done = cli(*_with_run(command, str(run)), "--redis-url", _url(port))
        assert done.returncode in (0, 1), done.stderr
    assert snapshot(redis_client) == before


def test_as_the_inspector_user(redis_client: Any, acl_users: dict[str, str]) -> None:
    port = redis_client.connection_pool.connection_kwargs["port"]
    inspector = _url(port, acl_users["inspector"])
    empty = cli("pending", "--redis-url", inspector)
    assert (empty.returncode, empty.stderr) == (
        3,
        f"rac-store: no store under prefix rac at redis://127.0.0.1:{port}/0\n",
    )
    run = uuid.uuid4()
    AuditStore(redis_client).add_expectations(run, create_run_expectations(run, 0, 0))
    before = snapshot(redis_client)
    assert cli("pending", "--redis-url", inspector).returncode == 0
    assert cli("show", str(run), "--redis-url", inspector).returncode == 0
    assert cli("watch", "--no-follow", "--redis-url", inspector).returncode == 0
    refused = cli("sweep", "--redis-url", inspector)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "StorePermissionError" in refused.stderr and ACL_PASSWORD not in refused.stderr
    assert snapshot(redis_client) == before  # the overdue run was not swept


SECRET = "pw-Very-Secret"


@pytest.mark.parametrize(
    "url",
    [
        f"redis://bob:{SECRET}@127.0.0.1:PORT/0",
        f"redis://127.0.0.1:PORT/0?password={SECRET}",
        f"redis://127.0.0.1:PORT?password={SECRET}",  # a query right after the host
        f"redis://:{SECRET}@127.0.0.1:PORT/0",
        f"redis://:p/{SECRET}@127.0.0.1:PORT/0",  # an unencoded '/' in the password
    ],
)
def test_credentials_are_never_printed(url: str) -> None:
    down = url.replace("PORT", str(free_port()))
    for args in (("show", str(uuid.uuid4())), ("pending", "--json"), ("demo",)):
        done = cli(*args, "--redis-url", down)
        assert done.returncode == 2
        assert SECRET not in done.stdout + done.stderr and "bob" not in done.stderr
        assert "127.0.0.1" in done.stderr  # the URL is named, redacted
    with running_redis(password="right") as server:
        wrong = url.replace("PORT", str(server.port))
        done = cli("pending", "--redis-url", wrong, "--json")
        assert done.returncode == 2 and SECRET not in done.stdout + done.stderr
        assert json.loads(done.stdout)["exit"] == 2


class Runs:
    """A store on the session's server: one run with a failed ack and nested metadata."""

    def __init__(self, client: Any) -> None:
        self.port = client.connection_pool.connection_kwargs["port"]
        self.url = _url(self.port)
        self.store = AuditStore(client, metrics=False)
        self.run = uuid.uuid4()
        metadata = {"routing": {("eu", 1): "tuple key", 7: b"\xff bytes"}, "nan": float("nan")}
        exp = AuditExpectation(self.run, "d", "a", 600_000, metadata=metadata)
        self.store.add_expectations(self.run, [exp])
        self.store.add_ack(self.run, create_domain_ack(self.run, "d", "a", error="down"))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--redis-url", self.url)


@pytest.fixture
def runs(redis_client: Any) -> Runs:
    return Runs(redis_client)


def test_a_server_without_aof_is_said_once_to_writers_and_never_to_readers(runs: Runs) -> None:
    """The session's server has no AOF: a writing command warns once, a reading one never."""
    warned = {"RAC_ALLOW_NO_PERSISTENCE": "false"}  # as on a machine that did not opt in
    for command in READ_ONLY:
        args = _with_run(command, str(runs.run))
        done = cli(*args, "--redis-url", runs.url, env=warned)
        assert done.returncode in (0, 1) and done.stderr == "", (args, done.stderr)
    done = cli("reconcile", str(runs.run), "--redis-url", runs.url, env=warned)
    assert done.returncode == 1  # the run has a failed action
    (warning,) = done.stderr.splitlines()
    assert warning.startswith("rac-store: WARNING: the server has no AOF (appendonly no)")


def test_json_output_is_json_even_for_odd_metadata(runs: Runs) -> None:
    done = runs.cli("show", str(runs.run), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    routing = data["expectations"][0]["metadata"]["routing"]
    assert routing['["eu",1]'] == "tuple key" and set(routing) == {'["eu",1]', "7"}
    assert data["expectations"][0]["metadata"]["nan"] == "nan"


def test_with_json_stdout_carries_only_json(runs: Runs) -> None:
    unknown = str(uuid.uuid4())
    for args in (("reconcile", unknown), ("show", unknown)):
        done = runs.cli(*args, "--json")
        assert done.returncode == 3
        error = json.loads(done.stdout)
        assert error == {"error": error["error"], "type": "RunNotFoundError", "exit": 3}
        assert "not in the store" in error["error"] and "not in the store" in done.stderr
    down = cli("pending", "--json", "--redis-url", f"redis://127.0.0.1:{free_port()}/0")
    assert down.returncode == 2 and json.loads(down.stdout)["exit"] == 2
    usage = runs.cli("pending", "--json", "--limit", "0")
    assert usage.returncode == 2 and usage.stdout == ""  # argparse: usage on stderr only
    for args in (("pending",), ("sweep",), ("reconcile", str(runs.run))):
        done = runs.cli(*args, "--json")
        assert done.returncode in (0, 1), done.stderr
        json.loads(done.stdout)  # one JSON document, nothing else
    acl = json.loads(cli("acl", "--json", "--prefix", "p").stdout)
    assert acl["worker"].startswith("ACL SETUSER rac-worker") and "~p:meta" in acl["inspector"]


def _first_line_then_close(*args: str) -> subprocess.CompletedProcess[str]:
    """``rac-store ARGS | head -1``: read one line, close the pipe, let the command go on."""
    process = subprocess.Popen(
        [RAC_STORE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    process.stdout = None
    _, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, first, err)


def test_a_closed_pipe_ends_quietly(runs: Runs) -> None:
    for i in range(0, 3000, 500):  # enough output to fill the pipe many times over
        acks = [create_domain_ack(runs.run, "many", f"action-{i + n}") for n in range(500)]
        runs.store.add_acks(runs.run, acks)
    overdue = uuid.uuid4()
    late = [AuditExpectation(overdue, "due", f"action-{n}", 0) for n in range(1000)]
    runs.store.add_expectations(overdue, late)
    AuditReconciler(runs.store).sweep()  # 1,000 MISSING events in the findings stream
    for args in (("show", str(runs.run)), ("watch", "--from-start", "--no-follow", "--json")):
        done = _first_line_then_close(*args, "--redis-url", runs.url)
        assert done.stdout.strip(), done.stderr
        assert done.returncode in (0, 141), done.stderr
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
        assert done.stderr in ("", "rac-store: watching 16 shard stream(s)\n")


@pytest.mark.parametrize(
    "args",
    [
        ("acl", "--prefix", "a b*"),
        ("acl", "--prefix", "x{1}"),
        ("sweep", "--every", "inf"),
        ("sweep", "--every", "nan"),
        ("sweep", "--every", "-1"),
        ("sweep", "--every", "1e300"),
        ("sweep", "--limit", "many"),
        ("pending", "--limit", "0"),
        ("pending", "--timeout", "0"),
        ("show", "RUN", "--prefix", ""),
        ("cluster-layout", "--redis-url", "redis://x", "--shards", "-4"),
        ("cluster-layout", "--redis-url", "redis://x", "--prefix", "a b*"),
        ("web", "--prefix", "a b*"),
        ("serve", "--port", "-1"),
    ],
    ids=" ".join,
)
def test_every_bad_option_is_a_usage_error(args: tuple[str, ...]) -> None:
    done = cli(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert "usage: rac-store" in done.stderr and "Traceback" not in done.stderr


def test_bad_urls_and_variables_are_usage_errors(runs: Runs) -> None:
    for url in ("http://x", "redis://h:notaport/0", "redis+cluster://h:1/3"):
        done = cli("pending", "--redis-url", url)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("rac-store: bad Redis URL"), done.stderr
    done = cli("pending", "--redis-url", runs.url, env={"RAC_CLI_TIMEOUT": "soon"})
    assert done.returncode == 2 and "RAC_CLI_TIMEOUT='soon'" in done.stderr
    assert cli("pending", env={}).stderr.startswith("rac-store: no Redis: pass --redis-url")


@pytest.mark.slow
def test_watch_reconnects_after_an_outage(tmp_path: Path) -> None:
    server = RedisServer().start()
    errors = tmp_path / "stderr.txt"
    store = AuditStore(server.client(), metrics=False)
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", "a", 600_000)])
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [RAC_STORE, "watch", "--json", "--redis-url", server.url],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    watchdog = threading.Timer(120, process.kill)  # a hang fails the test, never blocks it
    watchdog.start()
    try:
        printed = lines(process)
        poll_file(errors, "watching 16 shard stream(s)")
        store.update_expectation_status(run, "d", "a", "MISSING")
        assert json.loads(wait_for(printed, "MISSING"))["run_id"] == str(run)
        server.stop()
        assert "watch: connection lost" in poll_file(errors, "reconnecting in")
        server.restart()  # same port, empty: the store is made again
        store = AuditStore(server.client(), metrics=False)
        again = uuid.uuid4()
        store.add_expectations(again, [AuditExpectation(again, "d", "a", 600_000)])
        store.update_expectation_status(again, "d", "a", "MISSING")
        assert json.loads(wait_for(printed, str(again)))["type"] == "MISSING"
        said = poll_file(errors, "watch: reconnected")  # and it says so, after the losses
        assert said.index("reconnecting in") < said.index("watch: reconnected")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
        server.cleanup()
    assert "Traceback" not in errors.read_text()


@pytest.mark.cluster
def test_cluster_layout_as_json(redis_cluster: LocalCluster) -> None:
    redis_cluster.flush()
    AuditStore(redis_cluster.client(), prefix="lay", shards=64).close()
    node = f"redis://127.0.0.1:{redis_cluster.primary_ports()[0]}/0"  # any node is a seed
    done = cli("cluster-layout", "--redis-url", node, "--prefix", "lay", "--json")
    assert done.returncode == 0, done.stderr
    layout = json.loads(done.stdout)
    assert layout["shards"] == 64 and len(layout["owners"]) == 3
    assert sorted(s for shards in layout["owners"].values() for s in shards) == list(range(64))
