"""The operator commands, run as a user would: ``rac-store ...`` against a real Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from rac_store import AuditExpectation, AuditStore, create_domain_ack, create_run_expectations

from .support.cli import RAC_STORE, lines, poll_file, rac_store, wait_for
from .support.redis_server import RedisServer, free_port
from .support.targets import ServerTarget

LONG = 600_000


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return rac_store(*args, env=env)


class Runs:
    """A store with one run of each kind, on the session's server."""

    def __init__(self, url: str, client: Any) -> None:
        self.url = url
        self.store = AuditStore(client, metrics=False)
        self.complete, self.broken, self.stale, self.running = (uuid.uuid4() for _ in range(4))
        store = self.store
        store.add_expectations(self.complete, [AuditExpectation(self.complete, "d", "a", LONG)])
        store.add_ack(self.complete, create_domain_ack(self.complete, "d", "a"))
        store.add_expectations(
            self.broken,
            [
                AuditExpectation(self.broken, "d", "a", LONG),
                AuditExpectation(self.broken, "d", "b", 0),
            ],
        )
        store.add_ack(self.broken, create_domain_ack(self.broken, "d", "a", error="engine down"))
        store.add_ack(self.broken, create_domain_ack(self.broken, "x", "undeclared"))
        store.add_expectations(self.stale, create_run_expectations(self.stale, 0, 0))
        store.add_expectations(self.running, [AuditExpectation(self.running, "d", "a", LONG)])
        time.sleep(0.01)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--redis-url", self.url)


@pytest.fixture
def runs(server: ServerTarget) -> Runs:
    """The runs on the private redis-server, or on the local cluster."""
    return Runs(server.url, server.client)


def test_reconcile_exit_codes(runs: Runs) -> None:
    done = runs.run("reconcile", str(runs.complete))
    assert (done.returncode, done.stdout.splitlines()[0]) == (0, f"run {runs.complete}: COMPLETE")
    done = runs.run("reconcile", str(runs.broken))
    assert done.returncode == 1
    assert "INCOMPLETE" in done.stdout and "failed   d/a" in done.stdout
    assert "missing  d/b" in done.stdout and "drift    x/undeclared" in done.stdout
    assert runs.run("reconcile", str(runs.stale)).returncode == 1
    assert "STALE" in runs.run("reconcile", str(runs.stale), "--no-record").stdout
    assert runs.run("reconcile", str(runs.running)).returncode == 4
    missing = runs.run("reconcile", str(uuid.uuid4()))
    assert missing.returncode == 3 and "not in the store" in missing.stderr
    bad = runs.run("reconcile", "not-a-run")
    assert bad.returncode == 2 and "InvalidInputError" in bad.stderr
    as_json = json.loads(runs.run("reconcile", str(runs.broken), "--json").stdout)
    assert as_json["status"] == "INCOMPLETE" and as_json["drift_actions"] == [["x", "undeclared"]]
    recorded = [e for e in _events(runs) if e["source"] == "reconcile"]
    # broken was reconciled twice (and stale twice, once --no-record): recorded once each
    assert sorted(e["type"] for e in recorded) == ["INCOMPLETE", "STALE"]


def _events(runs: Runs) -> list[dict[str, Any]]:
    done = runs.run("watch", "--from-start", "--no-follow", "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_show(runs: Runs) -> None:
    done = runs.run("show", str(runs.broken))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"run {runs.broken}  shard ") and "INCOMPLETE" in lines[0]
    assert any(line.startswith("d/a") and "FAILED" in line for line in lines)
    assert any(line.startswith("d/b") and "PENDING" in line and "ago" in line for line in lines)
    assert any("x/undeclared" in line and "SUCCESS" in line for line in lines)
    assert "engine down" in done.stdout
    data = json.loads(runs.run("show", str(runs.broken), "--json").stdout)
    assert {e["action"] for e in data["expectations"]} == {"a", "b"}
    assert len(data["acks"]) == 2 and data["result"]["status"] == "INCOMPLETE"
    assert runs.run("show", str(uuid.uuid4())).returncode == 3
    assert [e for e in _events(runs) if e["source"] == "reconcile"] == []  # show records nothing


def test_pending(runs: Runs) -> None:
    every = runs.run("pending")
    assert every.returncode == 0
    listed = {line.split()[0] for line in every.stdout.splitlines()[1:-1]}
    assert listed == {str(runs.broken), str(runs.stale), str(runs.running)}
    assert every.stdout.splitlines()[-1] == "3 pending run(s)"
    due = runs.run("pending", "--due", "--json")
    assert due.returncode == 1
    report = json.loads(due.stdout)
    assert {r["run_id"] for r in report["runs"]} == {str(runs.broken), str(runs.stale)}
    dues = [r["due_ms"] for r in report["runs"]]
    assert dues == sorted(dues) and dues[-1] < report["now_ms"]
    limited = runs.run("pending", "--limit", "1")
    assert "more: raise --limit above 1" in limited.stdout
    assert runs.run("pending", "--limit", "0").returncode == 2  # argparse refuses it


def test_sweep_once(runs: Runs) -> None:
    first = runs.run("sweep")
    assert first.returncode == 1, first.stderr
    assert first.stdout.count("MISSING") == 5  # d/b and the stale run's four
    assert "sweep 1: 2 due run(s), 5 missing, 0 expired, more due: no" in first.stdout
    second = runs.run("sweep", "--json")
    assert second.returncode == 0
    assert json.loads(second.stdout)["findings"] == []
    assert runs.run("pending", "--due").returncode == 0


def test_connection_options(runs: Runs) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAC_REDIS_URL"}
    nowhere = cli("pending", env=env)
    assert nowhere.returncode == 2 and "RAC_REDIS_URL" in nowhere.stderr
    from_env = cli("reconcile", str(runs.complete), env=env | {"RAC_REDIS_URL": runs.url})
    assert from_env.returncode == 0
    down = cli("pending", "--redis-url", f"redis://127.0.0.1:{free_port()}/0", env=env)
    assert down.returncode == 2 and "connection refused" in down.stderr
    assert cli("pending", "--redis-url", "http://x", env=env).returncode == 2
    other = runs.run("pending", "--prefix", "elsewhere")
    assert other.returncode == 3 and other.stdout == ""
    assert "no store under prefix elsewhere at redis" in other.stderr


@pytest.mark.slow
def test_sweeper_loop_and_sigterm(runs: Runs) -> None:
    process = subprocess.Popen(
        [RAC_STORE, "sweep", "--every", "0.2", "--redis-url", runs.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = lines(process)
        assert "2 due run(s), 5 missing" in wait_for(printed, "sweep 1:")
        wait_for(printed, "sweep 2: 0 due run(s)")
        late = uuid.uuid4()
        runs.store.add_expectations(late, [AuditExpectation(late, "d", "a", 0)])
        wait_for(printed, "1 due run(s), 1 missing")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        rest = list(printed)
        assert rest[-1].startswith("stopped after ") and "6 missing" in rest[-1]
    finally:
        process.kill()
        process.wait()
    assert process.stderr is not None and process.stderr.read() == ""


@pytest.mark.slow
def test_watch_follows_and_stops_on_sigterm(runs: Runs) -> None:
    process = subprocess.Popen(
        [RAC_STORE, "watch", "--redis-url", runs.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed, seen = lines(process), []
        wait_for(printed, "watching 16 shard stream(s)")
        runs.store.update_expectation_status(runs.running, "d", "a", "MISSING")
        line = wait_for(printed, "MISSING", seen)
        assert str(runs.running) in line and "d/a" in line and "(status)" in line
        assert "missing=1" in wait_for(printed, "INCOMPLETE", seen)  # the run settled
        runs.store.update_expectation_status(runs.running, "d", "a", "ACKED")
        assert str(runs.running) in wait_for(printed, "COMPLETE", seen)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        seen += list(printed)
    finally:
        process.kill()
        process.wait()
    assert len(seen) == 3  # only what happened after it started: not the earlier COMPLETE
    assert process.stderr is not None and process.stderr.read() == ""


@pytest.mark.slow
def test_sweeper_outlives_an_outage(tmp_path: Path) -> None:
    first = server = RedisServer().start()
    AuditStore(server.client(), metrics=False).close()  # the store the sweeper sweeps
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [RAC_STORE, "sweep", "--every", "0.2", "--redis-url", server.url],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        printed = lines(process)
        wait_for(printed, "sweep 1:")
        server.stop()
        assert "redis://127.0.0.1" in poll_file(errors, "sweep failed, again in 0.2 s: ")
        server = RedisServer(port=first.port).start()  # back, on the same address
        wait_for(printed, "sweep 2:")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0  # the last sweep worked
        last = list(printed)[-1]
        assert last.startswith("stopped after ") and " 0 error(s)" not in last
    finally:
        process.kill()
        process.wait()
        first.cleanup()
        server.cleanup()


def test_end_judges_a_run_now_and_only_once(runs: Runs) -> None:
    final = runs.run("reconcile", str(runs.running), "--final", "--json")
    assert final.returncode == 1, final.stderr
    assert json.loads(final.stdout)["missing_actions"] == [["d", "a"]]  # nothing written
    assert runs.run("reconcile", str(runs.running)).returncode == 4  # still in progress
    ended = runs.run("end", str(runs.running), "--json")
    assert ended.returncode == 1, ended.stderr
    verdict = json.loads(ended.stdout)
    assert (verdict["status"], verdict["is_clean"]) == ("INCOMPLETE", False)
    assert runs.run("end", str(runs.running)).returncode == 1  # again: nothing more happens
    pushed = [e for e in _events(runs) if e["run_id"] == str(runs.running)]
    assert [(e["type"], e["source"]) for e in pushed] == [
        ("MISSING", "end"),
        ("INCOMPLETE", "end"),
    ]
    assert runs.run("end", str(runs.complete)).returncode == 0
    assert runs.run("end", str(uuid.uuid4())).returncode == 3
