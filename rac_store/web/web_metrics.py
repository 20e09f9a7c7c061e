"""The dashboard's Prometheus figures, when the ``metrics`` extra is installed.

In a registry of the app's own (two apps in one process never clash):

- ``rac_web_requests_total{page,code}``: pages served
- ``rac_web_request_duration_seconds{page}``: time to build and render a page
- ``rac_pending_runs``: runs in the pending indexes, read at scrape time (``ZCARD``)
- ``rac_overdue_runs``: of those, runs whose earliest due time has passed (``ZCOUNT``)

``/metrics`` also serves the process's default registry (the store's own metrics,
process and Python figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .views import PendingGauges


@dataclass
class WebMetrics:
    """The collectors, or nothing at all without prometheus_client."""

    registry: Any = None
    requests: Any = None
    duration: Any = None
    pending: Any = None
    overdue: Any = None

    @classmethod
    def create(cls) -> WebMetrics:
        """Collectors in a new registry; empty when prometheus_client is not installed."""
        try:
            import prometheus_client as prom  # noqa: PLC0415  (the optional extra)
        except ImportError:
            return cls()
        registry = prom.CollectorRegistry()
        return cls(
            registry,
            prom.Counter(
                "rac_web_requests_total", "Pages served", ["page", "code"], registry=registry
            ),
            prom.Histogram(
                "rac_web_request_duration_seconds",
                "Time to build and render a page",
                ["page"],
                registry=registry,
            ),
            prom.Gauge("rac_pending_runs", "Runs in the pending indexes", registry=registry),
            prom.Gauge(
                "rac_overdue_runs", "Runs whose earliest due time has passed", registry=registry
            ),
        )

    @property
    def available(self) -> bool:
        """True when prometheus_client is installed."""
        return self.registry is not None

    def observe(self, page: str, code: int, seconds: float) -> None:
        """Count one page served and its time."""
        if self.registry is not None:
            self.requests.labels(page=page, code=str(code)).inc()
            self.duration.labels(page=page).observe(seconds)

    def exposition(self, gauges: PendingGauges) -> tuple[bytes, str]:
        """The text format of this registry (gauges set to ``gauges``) and the default one."""
        import prometheus_client as prom  # noqa: PLC0415

        self.pending.set(gauges.pending)
        self.overdue.set(gauges.overdue)
        body = prom.generate_latest(self.registry) + prom.generate_latest(prom.REGISTRY)
        return body, prom.CONTENT_TYPE_LATEST
