"""Prometheus metrics: counted when prometheus_client is there, never imported when it is not."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest
from prometheus_client import CollectorRegistry

from rac_store import AuditExpectation, AuditStore, create_domain_ack
from rac_store.embedded import create_embedded_client
from rac_store.metrics import PrometheusMetrics, default_metrics
from rac_store.reconciler import AuditReconciler


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_counters_and_histogram() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    store = AuditStore(create_embedded_client(), metrics=metrics)
    rec = AuditReconciler(store, metrics=metrics)
    clean, broken = uuid.uuid4(), uuid.uuid4()
    store.add_expectations(clean, [AuditExpectation(clean, "d", "a", 600_000)])
    first = create_domain_ack(clean, "d", "a")
    store.add_ack(clean, first)
    store.add_acks(clean, [first, first])
    exps = [
        AuditExpectation(broken, "d", "a", 0),
        AuditExpectation(broken, "o", "fin", 0, metadata={"is_liveness_check": True}),
    ]
    store.add_expectations(broken, exps)
    store.add_ack(broken, create_domain_ack(broken, "x", "drift"))
    rec.reconcile(clean)
    rec.reconcile(broken)
    rec.reconcile(broken)
    assert value(registry, "rac_acks_recorded_total") == 2
    assert value(registry, "rac_acks_duplicate_total") == 2
    assert value(registry, "rac_reconciliation_total", status="COMPLETE") == 1
    assert value(registry, "rac_reconciliation_total", status="STALE") == 2
    assert value(registry, "rac_missing_actions_total", domain="d", action="a") == 2
    assert value(registry, "rac_missing_actions_total", domain="o", action="fin") == 2
    assert value(registry, "rac_drift_actions_total", domain="x", action="drift") == 2
    assert value(registry, "rac_stale_runs_total") == 2
    assert value(registry, "rac_reconciliation_duration_seconds_count") == 3
    assert value(registry, "rac_reconciliation_duration_seconds_sum") > 0


def test_metrics_false_records_nothing() -> None:
    registry = CollectorRegistry()
    PrometheusMetrics(registry)  # registered, but nobody is given it
    store = AuditStore(create_embedded_client(), metrics=False)
    run = uuid.uuid4()
    store.add_ack(run, create_domain_ack(run, "d", "a"))
    AuditReconciler(store, metrics=False).reconcile(run)
    assert value(registry, "rac_acks_recorded_total") == 0


def test_default_metrics_are_made_once() -> None:
    metrics = default_metrics()
    assert isinstance(metrics, PrometheusMetrics) and default_metrics() is metrics


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_nothing_is_imported_until_metrics_are_wanted() -> None:
    done = _python(
        """
        import sys
        import rac_store, rac_store.metrics, rac_store.reconciler
        assert "prometheus_client" not in sys.modules, "imported by import rac_store"
        from rac_store import AuditStore
        from rac_store.embedded import create_embedded_client
        AuditStore(create_embedded_client(), metrics=False)
        assert "prometheus_client" not in sys.modules, "imported with metrics=False"
        AuditStore(create_embedded_client())
        assert "prometheus_client" in sys.modules, "the default wants metrics"
        print("ok")
        """
    )
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.slow
def test_everything_works_without_prometheus_client() -> None:
    done = _python(
        """
        import sys, time, uuid
        from importlib.abc import MetaPathFinder

        class Absent(MetaPathFinder):
            tried = 0
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "prometheus_client":
                    Absent.tried += 1
                    raise ImportError("No module named 'prometheus_client' (blocked)")
                return None

        sys.meta_path.insert(0, Absent())
        from rac_store import AuditExpectation, AuditStore, create_domain_ack
        from rac_store.embedded import create_embedded_client
        from rac_store.metrics import PrometheusMetrics, default_metrics
        from rac_store.reconciler import AuditReconciler

        store = AuditStore(create_embedded_client())
        run = uuid.uuid4()
        store.add_expectations(run, [AuditExpectation(run, "d", "a", 0)])
        store.add_ack(run, create_domain_ack(run, "x", "y"))
        time.sleep(0.01)
        rec = AuditReconciler(store)
        assert len(rec.sweep().findings) == 1
        assert rec.reconcile(run).status.value == "INCOMPLETE"
        assert default_metrics() is None
        try:
            PrometheusMetrics()
        except ImportError:
            pass
        else:
            raise AssertionError("PrometheusMetrics without prometheus_client")
        assert "prometheus_client" not in sys.modules and Absent.tried >= 1
        print("ok")
        """
    )
    assert done.stdout.strip() == "ok", done.stderr
