"""Edges of the operator commands: malformed URLs, interrupts, outages of the long-running loops."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from rac_store import AuditExpectation, AuditStore, ReconciliationResult, ReconciliationStatus
from rac_store.cli import build_parser, main
from rac_store.cli.common import EXIT_INTERRUPTED, run_command, scrub, with_store
from rac_store.cli.demo import RunReport
from rac_store.cli.output import iso, jsonable
from rac_store.cli.watch import Positions
from rac_store.contrib.celery import HEADER, Target, audit_headers, install
from rac_store.errors import InvalidInputError
from rac_store.models import Finding, FindingType

from .support.cli import RAC_STORE, lines, poll_file, wait_for
from .support.redis_server import RedisServer, free_port

MALFORMED = "redis://ops:s3cret@[::1:6379"
"""An IPv6 host without its closing bracket: urlsplit refuses it (ValueError)."""


# -- URLs ---------------------------------------------------------------------------------
def test_a_malformed_url_is_a_usage_error_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["pending", "--redis-url", MALFORMED]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err.strip()
        == "rac-store: bad Redis URL: not a Redis URL (Invalid IPv6 URL): 'redis://[::1:6379'"
    )


def test_scrub_hides_the_password_of_a_url_it_cannot_parse() -> None:
    message = f"cannot reach {MALFORMED} (auth s3cret refused)"
    assert scrub(message, MALFORMED) == "cannot reach redis://[::1:6379 (auth *** refused)"
    assert scrub("no URL given: s3cret", None) == "no URL given: s3cret"


# -- running a command ----------------------------------------------------------------------
def test_an_interrupted_command_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    assert run_command(argparse.Namespace(run=interrupted)) == EXIT_INTERRUPTED == 130
    assert capsys.readouterr() == ("", "")


def test_with_store_runs_the_command_on_the_command_lines_store(
    redis_server: RedisServer, redis_client: Any
) -> None:
    run = uuid.uuid4()
    writer = AuditStore(redis_client, prefix="ops", metrics=False)
    writer.add_expectations(run, [AuditExpectation(run, "d", "a", 0)])
    seen: list[tuple[list[str], bool]] = []

    def command(store: AuditStore, args: argparse.Namespace) -> int:
        seen.append((store.get_pending_run_ids(), store.read_only))
        return 7

    args = build_parser().parse_args(
        ["pending", "--redis-url", redis_server.url, "--prefix", "ops"]
    )
    assert with_store(command, read_only=True)(args) == 7
    assert seen == [([str(run)], True)]
    missing = build_parser().parse_args(["pending", "--redis-url", redis_server.url])
    assert (
        run_command(
            argparse.Namespace(**{**vars(missing), "run": with_store(command, read_only=True)})
        )
        == 3
    )
    assert seen == [([str(run)], True)]  # no store under "rac": the command never ran


# -- output ---------------------------------------------------------------------------------
def test_output_of_no_time_and_of_unknown_values() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    assert iso(None) == "-"
    assert iso(0) == "1970-01-01T00:00:00.000Z"
    assert jsonable(Opaque()) == "opaque!"
    assert jsonable({"k": Opaque()}) == {"k": "opaque!"}


def test_demo_report_lines_of_a_clean_and_a_stale_run() -> None:
    run = uuid.uuid4()
    clean = RunReport(
        [], {}, ReconciliationResult(run_id=run, status=ReconciliationStatus.COMPLETE)
    )
    assert clean.lines()[1:] == ["  clean: every expected action was acked"]
    stale = RunReport(
        [], {}, ReconciliationResult(run_id=run, status=ReconciliationStatus.STALE, stale_run=True)
    )
    assert stale.lines()[1:] == ["  STALE    the run never reported finalize_run"]


def test_watch_positions_skip_events_without_a_place() -> None:
    positions = Positions({0: "0", 1: "0"})
    place = {"type": FindingType.MISSING, "run_id": "r", "at_ms": 1, "source": "sweep"}
    positions.advance(Finding(**place))  # a sweep result: no stream, no shard
    positions.advance(Finding(**place, shard=1))  # a shard but no stream id
    assert positions.by_shard == {0: "0", 1: "0"}
    positions.advance(Finding(**place, shard=1, stream_id="5-0"))
    assert positions.by_shard == {0: "0", 1: "5-0"}


# -- Celery, in this process (eager tasks) --------------------------------------------------
def test_celery_header_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=f"the {HEADER} header must be a mapping"):
        Target.of(argparse.Namespace(**{HEADER: "run=1"}))
    assert Target.of(argparse.Namespace(headers=None)) is None


def test_celery_uninstall_and_tasks_of_other_apps() -> None:
    ours, theirs = Celery("ours", set_as_current=False), Celery("theirs", set_as_current=False)
    attempts: list[int] = []

    def flaky(self: Any) -> str:
        attempts.append(self.request.retries)
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return "done"

    ours_task = ours.task(bind=True, name="flaky", max_retries=1)(flaky)
    theirs_task = theirs.task(bind=True, name="flaky", max_retries=1)(flaky)
    store = AuditStore(metrics=False)
    audit = install(ours, store)
    run, other = uuid.uuid4(), uuid.uuid4()
    try:
        # another app's task, headers and a retry included: not ours, nothing acked
        assert theirs_task.apply(headers=audit_headers(other, "d", "a")).get() == "done"
        assert store.get_acks(other) == []
        assert ours_task.apply(headers=audit_headers(run, "d", "a")).get() == "done"
        [ack] = store.get_acks(run)
        assert (ack.domain, ack.action, ack.error, ack.metadata["retries"]) == ("d", "a", None, 1)
    finally:
        audit.uninstall()
    assert ours_task.apply(headers=audit_headers(run, "d", "b")).get() == "done"
    assert [a.action for a in store.get_acks(run)] == ["a"]  # uninstalled: not acked
    assert attempts == [0, 1, 0, 1, 0, 1]


# -- long-running loops through an outage (real processes, stopped by SIGTERM) ---------------
@pytest.mark.slow
def test_sweeper_json_with_metrics_through_an_outage(tmp_path: Path) -> None:
    """--limit 1 with two due runs: the second sweep follows at once (more due); an outage is
    counted in rac_sweep_errors_total; SIGTERM ends it with the JSON totals."""
    server = RedisServer().start()
    store = AuditStore(server.client(), metrics=False)
    runs = [uuid.uuid4(), uuid.uuid4()]
    for run in runs:
        store.add_expectations(run, [AuditExpectation(run, "d", "a", 0)])
    store.close()
    port, errors = free_port(), tmp_path / "stderr.txt"
    command = [RAC_STORE, "sweep", "--every", "0.2", "--limit", "1", "--json"]
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [*command, "--metrics-port", str(port), "--redis-url", server.url],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        printed = lines(process)
        first, second = json.loads(next(printed)), json.loads(next(printed))
        assert (first["runs_swept"], first["more_due"]) == (1, True)
        assert (second["runs_swept"], second["more_due"]) == (1, False)
        server.stop()
        poll_file(errors, "sweep failed, again in 0.2 s")
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
        counted = [
            float(line.split()[1])
            for line in scraped.read().decode().splitlines()
            if line.startswith("rac_sweep_errors_total ")
        ]
        assert counted and counted[0] >= 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 2  # stopped while its last sweep had failed
        last = json.loads(list(printed)[-1])
    finally:
        process.kill()
        process.wait()
        server.cleanup()
    assert last["stopped"] is True
    assert (last["runs"], last["missing"]) == (2, 2)
    assert last["errors"] >= 1


@pytest.mark.slow
def test_watch_reconnects_then_stops_on_sigterm(tmp_path: Path) -> None:
    server = RedisServer().start()
    AuditStore(server.client(), metrics=False).close()
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [RAC_STORE, "watch", "--redis-url", server.url],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        wait_for(lines(process), "watching 16 shard stream(s)")
        server.stop()
        # two failures of one outage: the second pause grows (the count was not reset)
        deadline = time.monotonic() + 60
        while errors.read_text().count("reconnecting") < 2:
            assert time.monotonic() < deadline, errors.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()
        server.cleanup()
    said = [line for line in errors.read_text().splitlines() if "reconnecting" in line]
    assert all(line.startswith("rac-store: watch: connection lost (") for line in said)
