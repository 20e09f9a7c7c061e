"""``rac-store notify --webhook URL``: POST every finding to a webhook, at least once.

A consumer of the findings streams' consumer group ``--group``
(:meth:`~rac_store.reconciler.AuditReconciler.consumer`) that hands each event to
a :class:`~rac_store.webhook.Notifier`: retried with backoff and jitter, acked only
after a 2xx, dead-lettered after ``--max-tries`` (reported on stderr). Events left
pending by a consumer that died are claimed after ``--claim-idle-ms``.
``--once`` drains what is there and exits 0; otherwise it runs until SIGTERM or
Ctrl-C. The webhook URL is never printed (it often holds a secret).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..errors import RACStoreError
from ..findings_groups import lost_count
from ..metrics import DeliveryMetrics
from ..models import FindingType
from ..reconciler import AuditReconciler
from ..retry import Backoff
from ..webhook import JsonTemplate, Notifier, Outcome, event_document
from .common import (
    EXIT_ERROR,
    EXIT_OK,
    UsageError,
    add_connection_options,
    fail,
    open_reconciler,
    positive,
    positive_float,
    scrub,
    stop_on_signals,
)
from .metrics_server import add_metrics_options, serve_metrics
from .output import describe, emit_json


def webhook_url(text: str) -> str:
    """An argparse type: an http:// or https:// URL with a host (the value is never echoed)."""
    scheme, _, rest = text.partition("://")
    bad = scheme not in ("http", "https") or not rest or rest.startswith("/")
    try:
        _ = urlsplit(text).port  # ValueError: not a number in 0..65535 (urllib would raise later)
    except ValueError:
        bad = True
    if bad:
        raise argparse.ArgumentTypeError(
            "must be an http:// or https:// URL with a host (and a numeric port, if any)"
        )
    return text


def json_template(text: str) -> JsonTemplate:
    """An argparse type: a JSON template, inline or ``@file``."""
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {exc.strerror}") from exc
    try:
        return JsonTemplate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def non_negative(text: str) -> int:
    """An argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text}")
    return value


def header(text: str) -> tuple[str, str]:
    """An argparse type: ``Name: value``."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
        raise argparse.ArgumentTypeError("must be 'Name: value'")
    return name.strip(), value.strip()


def default_claim_idle_ms(args: argparse.Namespace) -> int:
    """Longer than one event's slowest delivery, so a live consumer's events are not claimed."""
    slowest = args.max_tries * (args.post_timeout + args.max_backoff)
    return max(60_000, int(2 * slowest * 1000))


class Report:
    """What ``notify`` prints: dead letters and losses on stderr, JSON lines with ``--json``."""

    def __init__(self, as_json: bool, group: str) -> None:
        self.as_json = as_json
        self.group = group
        self.totals: Counter[str] = Counter()

    def outcome(self, outcome: Outcome) -> None:
        finding = outcome.finding
        kind = "delivered" if outcome.delivered else "dead_lettered"
        self.totals[kind] += 1
        if finding.type is FindingType.GAP:
            self.totals["lost"] += lost_count(finding) or 0  # "unknown": Redis cannot tell
            print(
                f"rac-store notify: group {self.group} lost {finding.details.get('lost')} event(s)"
                f" of shard {finding.shard} ({finding.details.get('reason')})",
                file=sys.stderr,
                flush=True,
            )
        if not outcome.delivered:
            where = f"{finding.shard}/{finding.stream_id or '-'}"
            print(
                f"rac-store notify: dead-lettered {where} ({finding.type.value}"
                f" {finding.run_id}) after {outcome.tries} tries: {outcome.error}",
                file=sys.stderr,
                flush=True,
            )
        if self.as_json:
            emit_json(
                {
                    "outcome": kind,
                    "tries": outcome.tries,
                    "error": outcome.error or None,
                    "dead_letter_id": outcome.dead_letter_id,
                    "event": event_document(finding, self.group),
                }
            )

    def done(self) -> None:
        totals = {k: self.totals[k] for k in ("delivered", "dead_lettered", "lost")}
        if self.as_json:
            emit_json({"stopped": True, **totals})
        else:
            print(
                f"notify: {totals['delivered']} delivered, {totals['dead_lettered']}"
                f" dead-lettered, {totals['lost']} lost (group {self.group})",
                flush=True,
            )


def notify(rec: AuditReconciler, args: argparse.Namespace) -> int:
    """Deliver events until stopped (or, with ``--once``, until none is left)."""
    try:
        metrics = serve_metrics(args, DeliveryMetrics)
    except UsageError as exc:
        return fail(str(exc))
    consumer = rec.consumer(args.group, args.name or f"{socket.gethostname()}-{os.getpid()}")
    claim_idle = args.claim_idle_ms
    if claim_idle is None:
        claim_idle = default_claim_idle_ms(args)
    report = Report(args.json, args.group)
    if metrics is not None:
        metrics.start(args.group)
    failed = False
    with stop_on_signals() as stop:
        notifier = Notifier(
            consumer,
            args.webhook,
            template=args.json_template,
            headers=dict(args.header),
            timeout=args.post_timeout,
            max_tries=args.max_tries,
            backoff=Backoff(args.backoff, args.max_backoff),
            observer=metrics,
            summary=describe,
            stop=stop,
        )
        while not stop.is_set():
            try:
                batch = consumer.claim(claim_idle, args.batch)
                batch += consumer.read(args.batch, block_ms=None if args.once else args.block_ms)
                for finding in batch:
                    outcome = notifier.deliver(finding)
                    if outcome is None:
                        break  # stopped: the event stays pending, reclaimable
                    report.outcome(outcome)
                if metrics is not None:
                    backlog = consumer.backlog()
                    metrics.backlog(args.group, backlog.total_lag, backlog.total_pending)
            except RACStoreError as exc:
                if args.once:
                    raise
                failed = True  # a long-running consumer outlives an outage
                print(f"rac-store notify: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                stop.wait(1.0)
                continue
            failed = False
            if args.once and not batch:
                break
    report.done()
    return EXIT_ERROR if failed else EXIT_OK


def run_notify(args: argparse.Namespace) -> int:
    """Open the store (an error never shows the Redis URL's password), notify, close."""
    try:
        rec = open_reconciler(args)
    except UsageError as exc:
        return fail(scrub(str(exc), args.redis_url))
    try:
        return notify(rec, args)
    finally:
        rec.store.close()


def quiet_on_closed_stdout(run: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """A closed stdout pipe (``| head``) ends the command quietly instead of a traceback."""

    def guarded(args: argparse.Namespace) -> Any:
        try:
            return run(args)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK

    return guarded


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``notify`` to the CLI."""
    parser = commands.add_parser(
        "notify", help="POST every finding to a webhook (consumer group, at least once)"
    )
    parser.add_argument("--webhook", required=True, type=webhook_url, metavar="URL")
    parser.add_argument("--group", default="rac-notify", help="consumer group (rac-notify)")
    parser.add_argument("--name", help="consumer name in the group (default: HOST-PID)")
    parser.add_argument("--once", action="store_true", help="deliver what is there, then exit 0")
    parser.add_argument(
        "--json-template",
        type=json_template,
        metavar="JSON|@FILE",
        help='body template; strings name fields: \'{"text": "{summary}"}\' for Slack',
    )
    parser.add_argument(
        "--header",
        type=header,
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra HTTP header (repeatable), e.g. an Authorization token",
    )
    parser.add_argument("--max-tries", type=positive, default=5, help="tries per event (5)")
    parser.add_argument(
        "--post-timeout", type=positive_float, default=10.0, help="seconds per POST (10)"
    )
    parser.add_argument(
        "--backoff", type=positive_float, default=0.5, help="first retry delay in seconds (0.5)"
    )
    parser.add_argument(
        "--max-backoff", type=positive_float, default=10.0, help="longest retry delay (10)"
    )
    parser.add_argument("--batch", type=positive, default=100, help="events per read (100)")
    parser.add_argument(
        "--block-ms", type=positive, default=1000, help="wait for events this long per read"
    )
    parser.add_argument(
        "--claim-idle-ms",
        type=non_negative,
        help="claim events pending this long in dead consumers"
        " (default: twice the slowest delivery, at least 60000)",
    )
    add_metrics_options(parser)
    add_connection_options(parser)
    parser.set_defaults(run=quiet_on_closed_stdout(run_notify))
