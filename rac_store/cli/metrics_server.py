"""``--metrics-port``: long-running commands export Prometheus metrics (``rac-store[metrics]``)."""

from __future__ import annotations

import argparse
from typing import Any, TypeVar

from .common import UsageError

M = TypeVar("M")


def add_metrics_options(parser: argparse.ArgumentParser) -> None:
    """``--metrics-port`` and ``--metrics-host``."""
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="export Prometheus metrics on http://HOST:PORT/metrics (needs rac-store[metrics])",
    )
    parser.add_argument(
        "--metrics-host", default="0.0.0.0", help="address to export metrics on (0.0.0.0)"
    )


def serve_metrics(args: argparse.Namespace, make: type[M]) -> M | None:
    """``make()`` registered in the default registry and served, when ``--metrics-port`` is set.

    UsageError when prometheus_client is missing or the port cannot be bound.
    """
    if args.metrics_port is None:
        return None
    try:
        from ..metrics import serve  # noqa: PLC0415

        metrics: Any = make()
        serve(args.metrics_port, args.metrics_host)
    except ImportError as exc:
        raise UsageError(
            "--metrics-port needs prometheus-client: pip install 'rac-store[metrics]'"
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot export metrics on port {args.metrics_port}: {exc}") from exc
    return metrics  # type: ignore[no-any-return]
