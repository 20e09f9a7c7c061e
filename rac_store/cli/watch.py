"""``rac-store watch``: print findings events as they arrive, through outages, until stopped."""

from __future__ import annotations

import argparse
import threading
import time

import redis

from ..errors import StoreUnavailableError, map_redis_error
from ..models import Finding
from ..reconciler import AuditReconciler
from ..retry import Backoff
from .common import (
    EXIT_OK,
    add_connection_options,
    failure_message,
    stop_on_signals,
    with_reconciler,
)
from .output import describe, emit_json, say

QUIET_RESET = 60.0
"""Seconds without a failure after which the next one starts the backoff again."""


class Positions:
    """The last stream id read from each shard: where to resume after a reconnect."""

    def __init__(self, start: dict[int, str]) -> None:
        self.by_shard = dict(start)

    def advance(self, finding: Finding) -> None:
        """Record ``finding`` as read."""
        if finding.shard is not None and finding.stream_id:
            self.by_shard[finding.shard] = finding.stream_id


def _print(finding: Finding, as_json: bool) -> None:
    if as_json:
        emit_json(finding.to_dict())
    else:
        print(describe(finding), flush=True)


def _follow(
    rec: AuditReconciler, args: argparse.Namespace, positions: Positions, stop: threading.Event
) -> None:
    """Print events from ``positions`` on until caught up (or stopped); raises on an outage."""
    events = rec.iter_findings(
        since=dict(positions.by_shard),
        follow=not args.no_follow,
        block_ms=500,
        should_stop=stop.is_set,
    )
    for finding in events:
        _print(finding, args.json)
        positions.advance(finding)


def _probe(rec: AuditReconciler) -> None:
    """One PING: raises StoreUnavailableError while the server is still away."""
    try:
        rec.store.client.ping()
    except redis.RedisError as exc:
        raise map_redis_error(exc, "watch") from exc


def watch(rec: AuditReconciler, args: argparse.Namespace) -> int:
    """Print findings events of every shard as they arrive, until SIGTERM/SIGINT.

    A lost connection is reported on stderr and retried with a growing pause
    (with jitter, at most 30 s); the reconnection is reported too, and printing
    resumes after the last event printed.
    """
    shards = rec.store.core.keys.shards
    start = {s: "0" for s in range(shards)} if args.from_start else rec.findings_positions()
    positions = Positions(start)
    banner = f"watching {shards} shard stream(s)"
    if args.json:
        say(banner)
    else:
        print(banner, flush=True)
    backoff, failures, last_failure, lost = Backoff(), 0, 0.0, False
    with stop_on_signals() as stop:
        while not stop.is_set():
            try:
                if lost:
                    _probe(rec)
                    lost = False
                    say("watch: reconnected; resuming after the last event printed")
                _follow(rec, args, positions, stop)
                return EXIT_OK  # caught up (--no-follow), or stopped
            except StoreUnavailableError as exc:
                if time.monotonic() - last_failure > QUIET_RESET:
                    failures = 0  # a new outage, not the same one going on
                failures, last_failure, lost = failures + 1, time.monotonic(), True
                pause = backoff.delay(failures)
                reason = failure_message(exc, args)[0]
                say(f"watch: connection lost ({reason}); reconnecting in {pause:.1f} s")
                if stop.wait(pause):
                    break
                continue
    return EXIT_OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``watch`` to the CLI."""
    parser = commands.add_parser("watch", help="follow the findings streams of every shard")
    parser.add_argument(
        "--from-start", action="store_true", help="first print the events the streams still hold"
    )
    parser.add_argument(
        "--no-follow", action="store_true", help="stop when caught up instead of waiting"
    )
    add_connection_options(parser)
    parser.set_defaults(run=with_reconciler(watch, read_only=True))
