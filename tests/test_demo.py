"""``rac-store demo`` (the installed script) never touches a store it did not create."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from rac_store import (
    AuditExpectation,
    AuditStatus,
    AuditStore,
    create_domain_ack,
    create_run_expectations,
)

from .support.cli import RAC_STORE
from .support.snapshot import snapshot
from .support.targets import ServerTarget

DEMO_FINDINGS = {"COMPLETE": 1, "INCOMPLETE": 3, "MISSING": 1}
"""What the demo's three runs write to their findings streams: only these."""


def demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``rac-store demo``; persistence not waived (its stores are scratch:
    it warns about none, even on the session's servers, which have no AOF)."""
    environment = {**(os.environ if env is None else env), "RAC_ALLOW_NO_PERSISTENCE": "false"}
    return subprocess.run(
        [RAC_STORE, "demo", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=environment,
        check=False,
    )


def _production(client: object) -> uuid.UUID:
    """A "production" store under the default prefix: an overdue run, and findings events
    (3 COMPLETE, 3 MISSING) that a demo counting them would show."""
    store = AuditStore(client, metrics=False)
    overdue = uuid.uuid4()
    store.add_expectations(overdue, [AuditExpectation(overdue, "billing", "charge", 0)])
    for _ in range(3):
        done, lost = uuid.uuid4(), uuid.uuid4()
        store.add_expectations(done, create_run_expectations(done))
        for exp in create_run_expectations(done):
            store.add_ack(done, create_domain_ack(done, exp.domain, exp.action))  # COMPLETE
        store.add_expectations(lost, [AuditExpectation(lost, "billing", "refund", 600_000)])
        store.update_expectation_status(lost, "billing", "refund", "MISSING")  # MISSING
    return overdue


@pytest.mark.slow
def test_an_exported_redis_url_is_left_alone(server: ServerTarget) -> None:
    overdue = _production(server.client)
    before = snapshot(server.client)
    env = {**os.environ, "RAC_REDIS_URL": server.url}  # as docs/reconciler.md tells operators
    done = demo(env=env)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr and "no AOF" not in done.stderr
    assert "store mode MEMORY" in done.stdout and done.stdout.count("\nrun ") == 3
    assert "findings stream: 1 COMPLETE, 3 INCOMPLETE, 1 MISSING" in done.stdout
    assert snapshot(server.client) == before  # not one key written, swept or deleted
    statuses = [e.status for e in AuditStore(server.client).get_expectations(overdue)]
    assert statuses == [AuditStatus.PENDING]


@pytest.mark.slow
def test_on_a_redis_it_keeps_to_its_own_prefix_and_cleans_up(server: ServerTarget) -> None:
    overdue = _production(server.client)
    before = snapshot(server.client)
    done = demo("--redis-url", server.url, "--json")
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr and "no AOF" not in done.stderr
    report = json.loads(done.stdout)  # stdout is one JSON document, nothing else
    assert report["mode"] == "REDIS" and report["prefix"].startswith("racdemo-")
    assert len(report["runs"]) == 3 and report["sweep"]["runs_swept"] == 1
    assert {r["status"] for r in report["runs"]} == {"INCOMPLETE"}
    assert report["findings_stream"] == DEMO_FINDINGS  # not the production stream's COMPLETE
    assert snapshot(server.client) == before  # its own keys (meta, streams included) are gone
    statuses = [e.status for e in AuditStore(server.client).get_expectations(overdue)]
    assert statuses == [AuditStatus.PENDING]


@pytest.mark.slow
def test_on_the_embedded_store_with_json() -> None:
    done = demo("--json", "--runs", "4", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr and "no AOF" not in done.stderr
    report = json.loads(done.stdout)
    assert report["mode"] == "MEMORY" and len(report["runs"]) == 4
    failed = [r for r in report["runs"] if r["failed_actions"]]
    assert failed[0]["errors"] == [["policies", "evaluate_policy", "policy engine timed out"]]


@pytest.mark.parametrize(
    "args",
    [("--runs", "-3"), ("--runs", "2"), ("--runs", "x"), ("--workers", "0"), ("--workers", "-1")],
)
def test_bad_counts_are_usage_errors(args: tuple[str, ...]) -> None:
    done = demo(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert "usage: rac-store demo" in done.stderr and "Traceback" not in done.stderr


def test_the_orchestration_can_fill_a_store_in_this_process() -> None:
    """``orchestrate`` with no URL: threads ack on the store itself (the dashboard's demo data)."""
    from rac_store import AuditReconciler
    from rac_store.cli.demo import orchestrate
    from rac_store.embedded import create_embedded_client

    reconciler = AuditReconciler(AuditStore(create_embedded_client(), metrics=False))
    run_ids, swept = orchestrate(reconciler, runs=3, workers=2)
    assert swept.runs_swept == 1 and len(swept.missing) == 1
    results = [reconciler.reconcile(run, record=False) for run in run_ids]
    assert [bool(r.drift_actions) for r in results] == [True, False, False]
    assert [bool(r.failed_actions) for r in results] == [False, True, False]
    assert [bool(r.missing_actions) for r in results] == [False, False, True]
