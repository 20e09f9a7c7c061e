"""Prometheus metrics, from the optional extra ``rac-store[metrics]``.

``prometheus_client`` is imported only when metrics are first wanted, and
never when it is not installed: then every store and reconciler simply records
nothing. The names are those of the reconciler this package replaces:

- ``rac_reconciliation_total{status}``: reconciliations by verdict
- ``rac_missing_actions_total{domain,action}``: missing actions found
- ``rac_drift_actions_total{domain,action}``: drift actions found
- ``rac_stale_runs_total``: runs found stale
- ``rac_reconciliation_duration_seconds``: time of one reconciliation (histogram)
- ``rac_acks_recorded_total``: acks the store recorded (duplicates excluded)
- ``rac_acks_duplicate_total``: acks the store ignored as duplicates
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Literal, Protocol

from .models import AckOutcome, ReconciliationResult


class Metrics(Protocol):
    """What stores and reconcilers report; any object with these methods will do."""

    def observe_acks(self, outcomes: Iterable[AckOutcome]) -> None:
        """Count the outcomes of recorded acks."""

    def observe_reconciliation(self, result: ReconciliationResult, seconds: float) -> None:
        """Count one reconciliation, its findings and its duration."""


class PrometheusMetrics:
    """The metrics above, registered in ``registry`` (the default registry if None)."""

    def __init__(self, registry: Any = None) -> None:
        import prometheus_client as prom  # noqa: PLC0415  (the optional extra, imported lazily)

        options: dict[str, Any] = {} if registry is None else {"registry": registry}
        self.reconciliations = prom.Counter(
            "rac_reconciliation_total", "Reconciliations by verdict", ["status"], **options
        )
        self.missing = prom.Counter(
            "rac_missing_actions_total", "Missing actions found", ["domain", "action"], **options
        )
        self.drift = prom.Counter(
            "rac_drift_actions_total", "Drift actions found", ["domain", "action"], **options
        )
        self.stale = prom.Counter("rac_stale_runs_total", "Runs found stale", **options)
        self.duration = prom.Histogram(
            "rac_reconciliation_duration_seconds", "Time of one reconciliation", **options
        )
        self.acks_recorded = prom.Counter(
            "rac_acks_recorded_total", "Acks recorded (duplicates excluded)", **options
        )
        self.acks_duplicate = prom.Counter(
            "rac_acks_duplicate_total", "Acks ignored as duplicates", **options
        )

    def observe_acks(self, outcomes: Iterable[AckOutcome]) -> None:
        """Count recorded and duplicate acks."""
        recorded = duplicates = 0
        for outcome in outcomes:
            if outcome is AckOutcome.DUPLICATE:
                duplicates += 1
            else:
                recorded += 1
        if recorded:
            self.acks_recorded.inc(recorded)
        if duplicates:
            self.acks_duplicate.inc(duplicates)

    def observe_reconciliation(self, result: ReconciliationResult, seconds: float) -> None:
        """Count one verdict, its missing and drift actions, staleness and duration."""
        self.reconciliations.labels(status=result.status.value).inc()
        for domain, action in result.missing_actions:
            self.missing.labels(domain=domain, action=action).inc()
        for domain, action in result.drift_actions:
            self.drift.labels(domain=domain, action=action).inc()
        if result.stale_run:
            self.stale.inc()
        self.duration.observe(seconds)


_UNSET = object()
_default: Any = _UNSET
_default_lock = threading.Lock()


def default_metrics() -> PrometheusMetrics | None:
    """The process-wide metrics in the default registry; None without prometheus_client."""
    global _default
    with _default_lock:
        if _default is _UNSET:
            try:
                _default = PrometheusMetrics()
            except ImportError:
                _default = None
        return _default  # type: ignore[no-any-return]


MetricsOption = Metrics | Literal[False] | None
"""``None``: the default metrics when prometheus_client is installed; ``False``: none."""


def resolve_metrics(metrics: MetricsOption) -> Metrics | None:
    """The metrics an object should use for its ``metrics=`` option."""
    if metrics is None:
        return default_metrics()
    if metrics is False:
        return None
    return metrics
