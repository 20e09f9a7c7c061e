"""What the operator commands share: connection options, exit codes, signals, option types.

Exit codes of ``show``, ``pending``, ``reconcile``, ``sweep`` and ``watch``
(docs/reconciler.md):

== ==========================================================================
0  done, nothing wrong (a COMPLETE run, a sweep that found nothing, a clean stop)
1  findings (INCOMPLETE or STALE run, MISSING or EXPIRED from a sweep, overdue
   runs listed by ``pending --due``)
2  error (bad usage, no Redis URL, Redis unreachable or refusing)
3  run not found
4  run in progress (nothing wrong yet, expectations still PENDING)
== ==========================================================================
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import redis

from ..connect import client_from_url
from ..errors import RunNotFoundError, StoreUnavailableError
from ..reconciler import AuditReconciler
from ..store import AuditStore

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_NOT_FOUND = 3
EXIT_IN_PROGRESS = 4


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--redis-url``, ``--prefix`` and ``--json``."""
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("RAC_REDIS_URL"),
        help="the store's Redis (default: $RAC_REDIS_URL)",
    )
    parser.add_argument("--prefix", default="rac", help="key prefix of the store (default: rac)")
    parser.add_argument("--json", action="store_true", help="JSON output for scripts")


class UsageError(Exception):
    """The command line cannot work as given (exit code 2)."""


def open_reconciler(args: argparse.Namespace) -> AuditReconciler:
    """A reconciler on the store at ``--redis-url``, with the shard count the store recorded."""
    if not args.redis_url:
        raise UsageError("no Redis: pass --redis-url or set RAC_REDIS_URL")
    try:
        client = client_from_url(args.redis_url)  # redis+cluster:// for a Redis Cluster
    except ValueError as exc:
        raise UsageError(f"bad Redis URL {args.redis_url!r}: {exc}") from exc
    except StoreUnavailableError as exc:
        raise UsageError(str(exc)) from exc
    try:
        recorded = client.hget(f"{args.prefix}:meta", "shards")
    except redis.RedisError as exc:
        client.close()
        raise UsageError(f"cannot reach {args.redis_url}: {exc}") from exc
    shards = int(recorded) if recorded else 16
    store = AuditStore(client, prefix=args.prefix, shards=shards, metrics=False)
    return AuditReconciler(store, metrics=False)


def with_reconciler(
    command: Callable[[AuditReconciler, argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Open the store, run ``command``, close; map usage errors and unknown runs."""

    def run(args: argparse.Namespace) -> int:
        try:
            rec = open_reconciler(args)
        except UsageError as exc:
            return fail(str(exc))
        try:
            return command(rec, args)
        except RunNotFoundError as exc:
            print(f"rac-store: {exc}")
            return EXIT_NOT_FOUND
        finally:
            rec.store.close()

    return run


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT (previous handlers restored on exit)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def fail(message: str) -> int:
    """Print an error and return the error exit code."""
    print(f"rac-store: {message}", file=sys.stderr)
    return EXIT_ERROR


def positive(text: str) -> int:
    """An argparse type: an integer > 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer: {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text}")
    return value
