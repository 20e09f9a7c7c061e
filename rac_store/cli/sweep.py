"""``rac-store sweep``: the deadline sweeper, once or every N seconds."""

from __future__ import annotations

import argparse
import time

from ..core import DEFAULT_SWEEP_MARKS
from ..errors import RACStoreError
from ..metrics import SweeperMetrics
from ..models import SweepReport
from ..reconciler import AuditReconciler
from .common import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    UsageError,
    add_connection_options,
    fail,
    failure_message,
    positive,
    seconds,
    stop_on_signals,
    with_reconciler,
)
from .metrics_server import add_metrics_options, serve_metrics
from .output import describe, emit_json, iso, say


def _print_report(report: SweepReport, args: argparse.Namespace, cycle: int, ms: float) -> None:
    if args.json:
        emit_json({"cycle": cycle, "elapsed_ms": round(ms, 3), **report.to_dict()})
        return
    if not args.every:
        for finding in report.findings:
            print(describe(finding))
    more = "yes" if report.more_due else "no"
    print(
        f"{iso(report.now_ms)}  sweep {cycle}: {report.runs_swept} due run(s),"
        f" {len(report.missing)} missing, {len(report.expired)} expired,"
        f" more due: {more}  ({ms:.1f} ms)",
        flush=True,
    )


def sweep(rec: AuditReconciler, args: argparse.Namespace) -> int:
    """One bounded sweep, or a sweeper loop with ``--every`` until SIGTERM/SIGINT."""
    if not args.every:
        started = time.perf_counter()
        report = rec.sweep(limit=args.limit, marks_per_run=args.marks_per_run)
        _print_report(report, args, 1, (time.perf_counter() - started) * 1000)
        return EXIT_FINDINGS if report.findings else EXIT_OK
    try:
        metrics = serve_metrics(args, SweeperMetrics)  # --metrics-port
    except UsageError as exc:
        return fail(str(exc))
    totals = {"cycles": 0, "runs": 0, "missing": 0, "expired": 0, "errors": 0}
    failed = False
    with stop_on_signals() as stop:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                report = rec.sweep(limit=args.limit, marks_per_run=args.marks_per_run)
            except RACStoreError as exc:  # a long-running sweeper outlives an outage
                totals["errors"] += 1
                failed = True
                if metrics is not None:
                    metrics.observe_error()
                say(f"sweep failed, again in {args.every:g} s: {failure_message(exc, args)[0]}")
                stop.wait(args.every)
                continue
            failed = False
            if metrics is not None:
                metrics.observe_sweep(report, time.perf_counter() - started)
            totals["cycles"] += 1
            totals["runs"] += report.runs_swept
            totals["missing"] += len(report.missing)
            totals["expired"] += len(report.expired)
            _print_report(report, args, totals["cycles"], (time.perf_counter() - started) * 1000)
            if not report.more_due:
                stop.wait(args.every)
    if args.json:
        emit_json({"stopped": True, **totals})
    else:
        print(
            f"stopped after {totals['cycles']} sweep(s): {totals['runs']} due run(s),"
            f" {totals['missing']} missing, {totals['expired']} expired,"
            f" {totals['errors']} error(s)",
            flush=True,
        )
    return EXIT_ERROR if failed else EXIT_OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sweep`` and ``watch`` to the CLI."""
    parser = commands.add_parser(
        "sweep", help="mark overdue expectations MISSING (once, or every N seconds)"
    )
    parser.add_argument("--limit", type=positive, default=1000, help="due runs per sweep (1000)")
    parser.add_argument(
        "--marks-per-run",
        type=positive,
        default=DEFAULT_SWEEP_MARKS,
        help=f"expectations marked per run per sweep ({DEFAULT_SWEEP_MARKS})",
    )
    parser.add_argument(
        "--every",
        type=seconds,
        metavar="SECONDS",
        help="keep sweeping, pausing SECONDS between sweeps, until SIGTERM or Ctrl-C",
    )
    add_metrics_options(parser)
    add_connection_options(parser)
    parser.set_defaults(run=with_reconciler(sweep, read_only=False))
