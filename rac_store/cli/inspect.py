"""``rac-store show``, ``pending``, ``reconcile`` and ``end``: look at runs, and judge them."""

from __future__ import annotations

import argparse

from ..models import ReconciliationResult, ReconciliationStatus
from ..reconciler import AuditReconciler
from ..reconciliation import verdict
from .common import (
    EXIT_FINDINGS,
    EXIT_IN_PROGRESS,
    EXIT_OK,
    add_connection_options,
    positive,
    with_reconciler,
)
from .output import emit_json, iso, relative, table

_EXIT_OF = {
    ReconciliationStatus.COMPLETE: EXIT_OK,
    ReconciliationStatus.IN_PROGRESS: EXIT_IN_PROGRESS,
    ReconciliationStatus.INCOMPLETE: EXIT_FINDINGS,
    ReconciliationStatus.STALE: EXIT_FINDINGS,
}


def findings_lines(result: ReconciliationResult) -> list[str]:
    """One line per finding of a verdict."""
    lines = [f"  missing  {d}/{a}" for d, a in result.missing_actions]
    lines += [f"  failed   {d}/{a}" for d, a in result.failed_actions]
    lines += [f"  drift    {d}/{a}  (acked, never expected)" for d, a in result.drift_actions]
    if result.stale_run:
        lines.append("  stale    the liveness check (finalize) never arrived")
    return lines or ["  none"]


def show(rec: AuditReconciler, args: argparse.Namespace) -> int:
    """Print one run: expectations, acks and its verdict (nothing recorded)."""
    snap = rec.snapshot(args.run_id)
    result = verdict(snap)
    acks = rec.store.get_acks(snap.run_id)
    if args.json:
        emit_json(
            {
                "run_id": snap.run_id,
                "server_time_ms": snap.now_ms,
                "expectations": [
                    e.to_dict() | {"due_ms": snap.due_ms.get(e.key())} for e in snap.expectations
                ],
                "acks": [a.to_dict() for a in acks],
                "result": result.to_dict(),
            }
        )
        return EXIT_OK
    shard = rec.store.core.keys.shard_of(snap.run_id)
    print(f"run {snap.run_id}  shard {shard}  {result.status.value}  at {iso(snap.now_ms)}")
    rows = []
    for exp in snap.expectations:
        due = snap.due_ms.get(exp.key())
        when = f"due {relative(due, snap.now_ms)}" if due is not None else ""
        if exp.acked_at is not None:
            when = f"acked {iso(int(exp.acked_at.timestamp() * 1000))}"
        rows.append(
            [f"{exp.domain}/{exp.action}", exp.status.value, "late" if exp.late else "", when]
        )
    print(f"\nexpectations ({len(rows)})")
    print(table(["ACTION", "STATUS", "", "WHEN"], rows))
    ack_rows = [
        [
            a.created_at.isoformat(timespec="milliseconds"),
            f"{a.domain}/{a.action}",
            a.status.value,
            str(a.id)[:8],
            a.error or "",
        ]
        for a in acks
    ]
    print(f"\nacks ({len(ack_rows)})")
    print(table(["SENT", "ACTION", "STATUS", "ID", "ERROR"], ack_rows))
    print("\nfindings")
    print("\n".join(findings_lines(result)))
    return EXIT_OK


def pending(rec: AuditReconciler, args: argparse.Namespace) -> int:
    """List runs of the pending indexes, earliest due first."""
    report = rec.pending(due_only=args.due, limit=args.limit)
    if args.json:
        emit_json(report.to_dict())
    else:
        rows = [
            [r.run_id, r.shard, iso(r.due_ms), relative(r.due_ms, report.now_ms)]
            for r in report.runs
        ]
        print(table(["RUN", "SHARD", "EARLIEST DUE", ""], rows))
        what = "overdue" if args.due else "pending"
        more = f" (more: raise --limit above {args.limit})" if report.more else ""
        print(f"{len(report.runs)} {what} run(s){more}")
    return EXIT_FINDINGS if args.due and report.runs else EXIT_OK


def reconcile(rec: AuditReconciler, args: argparse.Namespace) -> int:
    """Reconcile one run; STALE and INCOMPLETE verdicts go to the findings stream."""
    if args.final:
        return print_verdict(rec.reconcile(args.run_id, final=True), args)
    return print_verdict(rec.reconcile(args.run_id, record=not args.no_record), args)


def end(rec: AuditReconciler, args: argparse.Namespace) -> int:
    """End one run: what is still PENDING becomes MISSING, and its verdict is pushed."""
    return print_verdict(rec.end_run(args.run_id), args)


def print_verdict(result: ReconciliationResult, args: argparse.Namespace) -> int:
    """Print a verdict (text or ``--json``); its exit code."""
    if args.json:
        emit_json(result.to_dict())
    else:
        print(f"run {result.run_id}: {result.status.value}")
        print(f"  {result.expectations_count} expectations, {result.acks_count} acks")
        print("\n".join(findings_lines(result)))
        if result.pending_actions:
            print(f"  ({len(result.pending_actions)} still pending before their deadline)")
    return _EXIT_OF[result.status]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``show``, ``pending`` and ``reconcile`` to the CLI."""
    parser = commands.add_parser("show", help="a run's expectations, acks and findings")
    parser.add_argument("run_id", metavar="RUN", help="run id (UUID)")
    add_connection_options(parser)
    parser.set_defaults(run=with_reconciler(show, read_only=True))

    parser = commands.add_parser("pending", help="runs with PENDING expectations")
    parser.add_argument("--due", action="store_true", help="only runs already past a deadline")
    parser.add_argument("--limit", type=positive, default=100, help="at most N runs (100)")
    add_connection_options(parser)
    parser.set_defaults(run=with_reconciler(pending, read_only=True))

    parser = commands.add_parser("reconcile", help="a run's verdict (exit 0/1/3/4)")
    parser.add_argument("run_id", metavar="RUN", help="run id (UUID)")
    judged = parser.add_mutually_exclusive_group()
    judged.add_argument(
        "--no-record", action="store_true", help="do not append the verdict to the stream"
    )
    judged.add_argument(
        "--final",
        action="store_true",
        help="the run is over: count what is still pending as missing (writes nothing)",
    )
    add_connection_options(parser)
    parser.set_defaults(run=with_reconciler(reconcile, read_only=_writes_nothing))

    parser = commands.add_parser(
        "end", help="end a run: pending becomes MISSING, its verdict is pushed (exit 0/1/3)"
    )
    parser.add_argument("run_id", metavar="RUN", help="run id (UUID)")
    add_connection_options(parser)
    parser.set_defaults(run=with_reconciler(end))


def _writes_nothing(args: argparse.Namespace) -> bool:
    return bool(args.no_record or args.final)
