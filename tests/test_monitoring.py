"""deploy/: the alerting rules and the Grafana dashboard name only metrics the code exports.

The exported names are collected from live registries after exercising the code:
an application's store and reconciler in this process, and the ``--metrics-port``
endpoints of a real ``rac-store sweep --every`` and ``rac-store notify`` process.
(``promtool check rules`` / ``promtool test rules`` run in .ci/run.)
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from rac_store import AuditExpectation, AuditStore, create_domain_ack
from rac_store.embedded import create_embedded_client
from rac_store.metrics import PrometheusMetrics
from rac_store.reconciler import AuditReconciler

from .support.findings_events import add_event
from .support.redis_server import RedisServer, free_port
from .support.webhook import Webhook

pytestmark = [pytest.mark.redis_only, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rac-store.rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "rac-store.json"
RAC_STORE = str(Path(sys.executable).parent / "rac-store")
METRIC = re.compile(r"\brac_[a-z0-9_]+\b")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample a ``/metrics`` endpoint exports: (name, labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def wait_until(port: int, ready: Callable[[Samples], bool], timeout: float = 60) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        try:
            samples = scrape(port)
            if ready(samples):
                return samples
        except OSError:
            pass  # not listening yet
        assert time.monotonic() < deadline, "the metrics never reached the expected values"
        time.sleep(0.1)


def application_names() -> set[str]:
    """What an application's store and reconciler export after acks and reconciliations."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    store = AuditStore(create_embedded_client(), metrics=metrics)
    rec = AuditReconciler(store, metrics=metrics)
    run = uuid.uuid4()
    exps = [
        AuditExpectation(run, "d", "a", 0),
        AuditExpectation(run, "o", "fin", 0, metadata={"is_liveness_check": True}),
    ]
    store.add_expectations(run, exps)
    drift = create_domain_ack(run, "x", "drift")
    store.add_acks(run, [drift, drift])
    rec.reconcile(run)
    return {s.name for family in registry.collect() for s in family.samples}


@pytest.fixture(scope="module")
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


@pytest.fixture(scope="module")
def exported(
    redis_server: RedisServer, processes: list[Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[set[str], Samples, Samples]:
    """Metric names of an application, a sweeper and a notifier; the two processes' samples."""
    tmp_path = tmp_path_factory.mktemp("monitoring")
    redis_client = redis_server.client()
    redis_client.flushall()
    # module-scoped: opened before the autouse fixture sets RAC_ALLOW_NO_PERSISTENCE
    store = AuditStore(redis_client, metrics=False, allow_no_persistence=True)
    overdue = uuid.uuid4()
    store.add_expectations(overdue, [AuditExpectation(overdue, "d", "late", 0)])
    _, _, poisoned = add_event(redis_client, store.core.keys, 10_000, missing="1")
    (tmp_path / "poison").write_text(str(poisoned))
    hook = Webhook(tmp_path / "hook.jsonl", "--poison", str(tmp_path / "poison"))
    processes.append(hook.process)
    sweep_port, notify_port = free_port(), free_port()
    local = ("--metrics-host", "127.0.0.1", "--redis-url", redis_server.url)
    sweeper = subprocess.Popen(
        [RAC_STORE, "sweep", "--every", "0.2", "--metrics-port", str(sweep_port), *local],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    notifier = subprocess.Popen(
        [RAC_STORE, "notify", "--webhook", hook.url, "--group", "pager",
         "--block-ms", "100", "--max-tries", "2", "--backoff", "0.01", "--max-backoff", "0.02",
         "--metrics-port", str(notify_port), *local],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    processes += [sweeper, notifier]
    swept = wait_until(
        sweep_port,
        lambda s: (
            (value(s, "rac_sweep_findings_total", type="MISSING") or 0) >= 1
            and (value(s, "rac_sweep_last_success_timestamp_seconds") or 0) > 0
        ),
    )
    # the sweeper's events (its MISSING mark, …) and the poisoned INCOMPLETE one reach the notifier
    notified = wait_until(
        notify_port,
        lambda s: (
            (value(s, "rac_notify_delivered_total", group="pager") or 0) >= 1
            and value(s, "rac_notify_dead_letters_total", group="pager") == 1
            and value(s, "rac_findings_delivery_lag", group="pager") == 0
            and value(s, "rac_findings_pending", group="pager") == 0
        ),
    )
    for process in (sweeper, notifier):
        process.send_signal(signal.SIGTERM)
    assert notifier.wait(30) == 0 and sweeper.wait(30) == 0
    assert notifier.stdout is not None
    delivered = value(notified, "rac_notify_delivered_total", group="pager")
    assert f"{delivered:g} delivered, 1 dead-lettered, 0 lost" in notifier.stdout.read()
    names = application_names() | {name for name, _ in swept} | {name for name, _ in notified}
    return names, swept, notified


def referenced(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in METRIC.findall(expr)}


def test_the_processes_export_what_they_did(exported: tuple[set[str], Samples, Samples]) -> None:
    _, swept, notified = exported
    assert (value(swept, "rac_sweeps_total") or 0) >= 1
    assert value(swept, "rac_sweep_errors_total") == 0
    assert value(notified, "rac_notify_attempt_failures_total", group="pager") == 2
    assert value(notified, "rac_findings_lost_total", group="pager") == 0
    assert value(notified, "rac_findings_pending", group="pager") == 0
    assert (value(notified, "rac_notify_last_delivery_timestamp_seconds", group="pager") or 0) > 0


def test_rules_name_only_exported_metrics(exported: tuple[set[str], Samples, Samples]) -> None:
    names = exported[0]
    rules = [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]
    assert len(rules) >= 4
    alerts = {rule["alert"] for rule in rules}
    assert {
        "RacStoreMissingActions",
        "RacStoreStaleRuns",
        "RacStoreFindingsDeliveryLag",
        "RacStoreSweeperNotRunning",
    } <= alerts
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
    used = referenced([rule["expr"] for rule in rules])
    assert used and used <= names, sorted(used - names)


def test_dashboard_names_only_exported_metrics(exported: tuple[set[str], Samples, Samples]) -> None:
    names = exported[0]
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert dashboard["uid"] and dashboard["title"] and len(panels) >= 10
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert all(p["targets"] and p["datasource"]["uid"] == "${datasource}" for p in panels)
    used = referenced(exprs)
    assert used <= names, sorted(used - names)
    # every metric family the processes export has a panel
    families = {
        re.sub(r"_(bucket|sum|count)$", "", n)
        for n in names
        if n.startswith("rac_") and not n.endswith("_created")
    }
    shown = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    assert families - shown == set(), sorted(families - shown)


def test_a_taken_metrics_port_is_a_usage_error(
    redis_client: Any, redis_server: RedisServer
) -> None:
    AuditStore(redis_client, metrics=False)
    port = free_port()
    blocker = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        done = subprocess.run(
            [RAC_STORE, "sweep", "--every", "1", "--metrics-port", str(port), "--metrics-host",
             "127.0.0.1", "--redis-url", redis_server.url],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        blocker.terminate()
        blocker.wait(10)
    assert done.returncode == 2 and "cannot export metrics" in done.stderr
    assert "Traceback" not in done.stderr
