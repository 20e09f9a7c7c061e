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

The long-running commands export their own, from the process that runs them
(``--metrics-port``): :class:`SweeperMetrics` (``rac-store sweep --every``) and
:class:`DeliveryMetrics` (``rac-store notify``). Dashboards and alerting rules
for all of them: ``deploy/`` (docs/integrations.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Literal, Protocol

from .models import AckOutcome, ReconciliationResult, SweepReport


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


def _prometheus(registry: Any) -> tuple[Any, dict[str, Any]]:
    import prometheus_client as prom  # noqa: PLC0415  (the optional extra, imported lazily)

    return prom, ({} if registry is None else {"registry": registry})


class SweeperMetrics:
    """What a sweeper (``rac-store sweep --every``) exports.

    - ``rac_sweeps_total``: sweeps done
    - ``rac_sweep_errors_total``: sweeps that failed (the sweeper goes on)
    - ``rac_sweep_last_success_timestamp_seconds``: when the last sweep succeeded (unix time)
    - ``rac_sweep_duration_seconds``: time of one sweep (histogram)
    - ``rac_sweep_runs_total``: due runs swept
    - ``rac_sweep_findings_total{type}``: MISSING marks and EXPIRED runs found
    """

    def __init__(self, registry: Any = None) -> None:
        prom, options = _prometheus(registry)
        self.sweeps = prom.Counter("rac_sweeps_total", "Sweeps done", **options)
        self.errors = prom.Counter("rac_sweep_errors_total", "Sweeps that failed", **options)
        self.last_success = prom.Gauge(
            "rac_sweep_last_success_timestamp_seconds",
            "Unix time of the last successful sweep",
            **options,
        )
        self.duration = prom.Histogram("rac_sweep_duration_seconds", "Time of one sweep", **options)
        self.runs = prom.Counter("rac_sweep_runs_total", "Due runs swept", **options)
        self.findings = prom.Counter(
            "rac_sweep_findings_total", "Findings of sweeps by type", ["type"], **options
        )
        for kind in ("MISSING", "EXPIRED"):
            self.findings.labels(type=kind)

    def observe_sweep(self, report: SweepReport, seconds: float) -> None:
        """Count one successful sweep and what it found."""
        self.sweeps.inc()
        self.duration.observe(seconds)
        self.runs.inc(report.runs_swept)
        self.findings.labels(type="MISSING").inc(len(report.missing))
        self.findings.labels(type="EXPIRED").inc(len(report.expired))
        self.last_success.set_to_current_time()

    def observe_error(self) -> None:
        """Count one failed sweep."""
        self.errors.inc()


class DeliveryMetrics:
    """What a findings consumer (``rac-store notify``) exports, by consumer group.

    - ``rac_notify_delivered_total{group}``: events POSTed with a 2xx answer and acked
    - ``rac_notify_attempt_failures_total{group}``: POSTs that failed (tried again or not)
    - ``rac_notify_dead_letters_total{group}``: events moved to a dead-letter stream
    - ``rac_findings_lost_total{group}``: events the group lost (GAP records)
    - ``rac_findings_delivery_lag{group}``: events not delivered to the group yet
    - ``rac_findings_pending{group}``: events delivered and not acked yet
    - ``rac_notify_last_delivery_timestamp_seconds{group}``: unix time of the last delivery
    """

    def __init__(self, registry: Any = None) -> None:
        prom, options = _prometheus(registry)

        def make(kind: Any, name: str, documentation: str) -> Any:
            return kind(name, documentation, ["group"], **options)

        self._delivered, self._failures, self._dead, self._lost = (
            make(prom.Counter, name, documentation)
            for name, documentation in (
                ("rac_notify_delivered_total", "Events delivered and acked"),
                ("rac_notify_attempt_failures_total", "Delivery attempts that failed"),
                ("rac_notify_dead_letters_total", "Events moved to a dead-letter stream"),
                ("rac_findings_lost_total", "Events a consumer group lost (trimmed)"),
            )
        )
        self._lag, self._pending, self._last = (
            make(prom.Gauge, name, documentation)
            for name, documentation in (
                ("rac_findings_delivery_lag", "Events not delivered to the group yet"),
                ("rac_findings_pending", "Events delivered and not acked yet"),
                ("rac_notify_last_delivery_timestamp_seconds", "Unix time of the last delivery"),
            )
        )

    def start(self, group: str) -> None:
        """Export every series of ``group`` from the start (counters at 0)."""
        for metric in (self._delivered, self._failures, self._dead, self._lost):
            metric.labels(group=group)

    def delivered(self, group: str) -> None:
        """One event delivered and acked."""
        self._delivered.labels(group=group).inc()
        self._last.labels(group=group).set_to_current_time()

    def attempt_failed(self, group: str) -> None:
        """One failed POST."""
        self._failures.labels(group=group).inc()

    def dead_lettered(self, group: str) -> None:
        """One event dead-lettered."""
        self._dead.labels(group=group).inc()

    def lost(self, group: str, events: int) -> None:
        """Events a GAP record reported lost."""
        self._lost.labels(group=group).inc(events)

    def backlog(self, group: str, lag: int, pending: int) -> None:
        """The group's lag and pending count, as last read."""
        self._lag.labels(group=group).set(lag)
        self._pending.labels(group=group).set(pending)


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Export the default registry over HTTP (``/metrics``) from a background thread."""
    import prometheus_client as prom  # noqa: PLC0415

    prom.start_http_server(port, addr=host)
