"""What the commands share: options, opening a store, failures, exit codes, signals.

Exit codes of ``show``, ``pending``, ``reconcile``, ``sweep`` and ``watch``
(docs/reconciler.md):

=== ==========================================================================
0   done, nothing wrong (a COMPLETE run, a sweep that found nothing, a clean stop)
1   findings (INCOMPLETE or STALE run, MISSING or EXPIRED from a sweep, overdue
    runs listed by ``pending --due``)
2   error (bad usage, no Redis URL, Redis unreachable or refusing)
3   not found (a run, or a store under the prefix)
4   run in progress (nothing wrong yet, expectations still PENDING)
130 interrupted (Ctrl-C); 141 stdout was closed (``rac-store show RUN | head -1``)
=== ==========================================================================

The rules every command follows (new commands use the same helpers):

* **Options**: :func:`add_connection_options` adds ``--redis-url`` (default
  ``$RAC_REDIS_URL``), ``--prefix``, ``--timeout`` and ``--json``. Option types
  (:func:`positive`, :func:`positive_number`, :func:`seconds`, :func:`at_least`,
  :func:`prefix_word`) make
  every bad value a usage error (exit 2), never a traceback.
* **Opening the store**: :func:`opened_store` (or :func:`with_store` /
  :func:`with_reconciler` around a command) opens ``--prefix`` at ``--redis-url``
  with a connect and read timeout. ``read_only=True`` never writes (it works as
  the inspector user); a writable store is opened only once the store is known to
  exist, so no command ever creates a store. No store under the prefix: exit 3,
  "no store under prefix P at URL".
* **Failures**: raise :class:`UsageError` (exit 2) for a command line that cannot
  work; library errors (:class:`~rac_store.errors.RACStoreError`) reach
  :func:`run_command`, which prints them (a connection failure explained by
  :mod:`rac_store.cli.connection_errors`) with their exit code.
* **Warnings** of the library (a server without an AOF, an evicting policy) are
  said once each on stderr (:func:`warnings_said_once`).
* **Output**: with ``--json`` stdout carries only JSON (:func:`~.output.emit_json`),
  a failure included (``{"error": ..., "type": ..., "exit": N}``); messages for
  people go to stderr (:func:`~.output.say`). A closed stdout ends the command
  quietly (exit 141).
* **URLs** are printed only through :func:`shown_url` (no user, no password); a
  failure message is also scrubbed of the URL's password (:func:`scrub`).
* **Long-running commands** stop on SIGTERM/SIGINT (:func:`stop_on_signals`) and
  outlive outages, waiting with :class:`~rac_store.retry.Backoff` between attempts.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any
from urllib.parse import unquote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..cluster.urls import redacted, split_cluster_url, split_user_info
from ..connect import client_from_url
from ..errors import (
    InvalidInputError,
    RACStoreError,
    RunNotFoundError,
    StoreNotFoundError,
)
from ..reconciler import AuditReconciler
from ..retry import RetryPolicy
from ..server_checks import EvictionPolicyWarning, PersistenceWarning
from ..store import AuditStore
from .connection_errors import explain
from .output import report_failure, silence_stdout

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_NOT_FOUND = 3
EXIT_IN_PROGRESS = 4
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a command whose reader went away."""

DEFAULT_TIMEOUT = 5.0
"""Seconds to connect, and to wait for any reply (``--timeout``, ``$RAC_CLI_TIMEOUT``)."""
TIMEOUT_ENV = "RAC_CLI_TIMEOUT"
MAX_SECONDS = 86_400.0
"""The longest pause or timeout an option takes (a day)."""
CLI_RETRY = RetryPolicy(attempts=1)
"""A command reports a lost connection at once (the long-running ones retry themselves)."""


class UsageError(Exception):
    """The command line cannot work as given (exit code 2)."""


# -- option types -----------------------------------------------------------------------
def positive(text: str) -> int:
    """An argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer: {text}")
    return value


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        value = positive(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {text}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def positive_number(text: str) -> float:
    """An argparse type: a finite number > 0 (``inf``, ``nan`` and negatives refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0: {text}")
    return value


positive_float = positive_number
"""The name the commands used before :func:`positive_number` (kept for them)."""


def seconds(text: str) -> float:
    """An argparse type: a number of seconds > 0, at most a day."""
    value = positive_number(text)
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"at most {MAX_SECONDS:g} seconds: {text}")
    return value


_PREFIX_FORBIDDEN = set("{}|*?[]\\")


def prefix_word(text: str) -> str:
    """An argparse type: a key prefix (no braces, ``|``, glob characters or whitespace)."""
    if not text or any(c in _PREFIX_FORBIDDEN or c.isspace() or not c.isprintable() for c in text):
        raise argparse.ArgumentTypeError(
            f"a prefix is one word without braces, '|', glob characters or spaces: {text!r}"
        )
    return text


def command_timeout(args: argparse.Namespace) -> float:
    """``--timeout``, else ``$RAC_CLI_TIMEOUT``, else 5 s (UsageError for a bad variable)."""
    given: float | None = getattr(args, "timeout", None)
    if given is not None:
        return given
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        return seconds(raw)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{TIMEOUT_ENV}={raw!r}: {exc}") from None


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--redis-url``, ``--prefix``, ``--timeout`` and ``--json``."""
    add_url_option(parser, "the store's Redis (default: $RAC_REDIS_URL)")
    add_prefix_option(parser)
    add_timeout_option(parser)
    add_json_option(parser)


def add_url_option(
    parser: argparse.ArgumentParser, help: str, *, from_env: bool = True, required: bool = False
) -> None:
    """``--redis-url`` (default ``$RAC_REDIS_URL`` when ``from_env``)."""
    default = os.environ.get("RAC_REDIS_URL") if from_env and not required else None
    parser.add_argument("--redis-url", default=default, required=required, help=help)


def add_prefix_option(parser: argparse.ArgumentParser) -> None:
    """``--prefix WORD``: the store's key prefix, checked as a usage error."""
    parser.add_argument(
        "--prefix", type=prefix_word, default="rac", help="key prefix of the store (default: rac)"
    )


def add_timeout_option(parser: argparse.ArgumentParser) -> None:
    """``--timeout SECONDS``: to connect, and for each reply."""
    parser.add_argument(
        "--timeout",
        type=seconds,
        metavar="SECONDS",
        help=f"to connect and for each reply (default: ${TIMEOUT_ENV} or {DEFAULT_TIMEOUT:g})",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json``: stdout carries only JSON."""
    parser.add_argument(
        "--json", action="store_true", help="JSON on stdout (messages on stderr), for scripts"
    )


# -- URLs -----------------------------------------------------------------------------
def shown_url(url: str) -> str:
    """``url`` as it may be printed: without user or password."""
    return redacted(url)


def scrub(message: str, url: str | None) -> str:
    """``message`` with the URL's password (and the raw URL) replaced, should it contain them."""
    if not url:
        return message
    message = message.replace(url, shown_url(url))
    password = split_user_info(url)[1].partition(":")[2]
    for secret in {password, unquote(password)} - {""}:
        message = message.replace(str(secret), "***")
    return message


# -- opening the store ----------------------------------------------------------------
def require_url(args: argparse.Namespace) -> str:
    """``--redis-url`` (or ``$RAC_REDIS_URL``), checked; UsageError when missing or malformed."""
    url: str | None = args.redis_url
    if not url:
        raise UsageError("no Redis: pass --redis-url or set RAC_REDIS_URL")
    try:
        split_cluster_url(url)
    except InvalidInputError as exc:
        raise UsageError(f"bad Redis URL: {exc}") from None
    return url


def connect(url: str, timeout: float) -> Any:
    """A client of ``url`` with the command's timeouts and no silent re-sends of its own."""
    options: dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    if not split_cluster_url(url)[1]:
        options["retry"] = Retry(NoBackoff(), 0)
    try:
        return client_from_url(url, **options)
    except ValueError as exc:  # redis-py's own URL checks (port, query values)
        raise UsageError(f"bad Redis URL {shown_url(url)}: {exc}") from None


def open_store(args: argparse.Namespace, *, read_only: bool) -> AuditStore:
    """The store ``--prefix`` at ``--redis-url``, which must exist (the caller closes it).

    ``read_only`` opens it without ever writing. Otherwise it is first found
    read-only (so a mistyped prefix creates nothing), then opened for writing.
    StoreNotFoundError when there is no store under the prefix.
    """
    client = connect(require_url(args), command_timeout(args))
    options: dict[str, Any] = {"prefix": args.prefix, "metrics": False, "retry": CLI_RETRY}
    try:
        store = AuditStore(client, read_only=True, **options)
        if not read_only:
            store = AuditStore(client, shards=store.core.keys.shards, **options)
    except BaseException:
        client.close()
        raise
    return store


@contextmanager
def opened_store(args: argparse.Namespace, *, read_only: bool) -> Iterator[AuditStore]:
    """:func:`open_store`, closed on exit."""
    store = open_store(args, read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def open_reconciler(args: argparse.Namespace, *, read_only: bool = False) -> AuditReconciler:
    """A reconciler over :func:`open_store` (the caller closes ``rec.store``)."""
    return AuditReconciler(open_store(args, read_only=read_only), metrics=False)


def with_store(
    command: Callable[[AuditStore, argparse.Namespace], int], *, read_only: bool
) -> Callable[[argparse.Namespace], int]:
    """``command`` run on the store of the command line (see :func:`opened_store`)."""

    def run(args: argparse.Namespace) -> int:
        with opened_store(args, read_only=read_only) as store:
            return command(store, args)

    return run


def with_reconciler(
    command: Callable[[AuditReconciler, argparse.Namespace], int],
    *,
    read_only: bool | Callable[[argparse.Namespace], bool] = False,
) -> Callable[[argparse.Namespace], int]:
    """``command`` run with a reconciler over the store of the command line.

    ``read_only`` may depend on the options (``reconcile --no-record`` writes nothing);
    a command that only reads should say so.
    """

    def run(args: argparse.Namespace) -> int:
        reading = read_only(args) if callable(read_only) else read_only
        with opened_store(args, read_only=reading) as store:
            return command(AuditReconciler(store, metrics=False), args)

    return run


# -- running a command ----------------------------------------------------------------
def fail(message: str) -> int:
    """Print an error (stderr) and return the error exit code."""
    return report_failure(message, "UsageError", EXIT_ERROR, as_json=False)


def failure_message(exc: BaseException, args: argparse.Namespace) -> tuple[str, int]:
    """What to print for an error a command raised, and its exit code."""
    url = getattr(args, "redis_url", None)
    if isinstance(exc, StoreNotFoundError) and url:
        where = f"no store under prefix {args.prefix} at {shown_url(url)}"
        return where, EXIT_NOT_FOUND
    if isinstance(exc, RunNotFoundError):
        return str(exc), EXIT_NOT_FOUND
    explained = (
        explain(exc, url, getattr(args, "timeout", None) or DEFAULT_TIMEOUT) if url else None
    )
    return scrub(explained or f"{type(exc).__name__}: {exc}", url), EXIT_ERROR


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command: its exit code, failures printed, never a traceback for them."""
    as_json = bool(getattr(args, "json", False))
    try:
        code = int(args.run(args))
        sys.stdout.flush()
        return code
    except UsageError as exc:
        return report_failure(str(exc), "UsageError", EXIT_ERROR, as_json=as_json)
    except (RACStoreError, redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        message, code = failure_message(exc, args)
        return report_failure(message, type(exc).__name__, code, as_json=as_json)
    except BrokenPipeError:
        silence_stdout()
        return EXIT_CLOSED_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


@contextmanager
def warnings_said_once() -> Iterator[None]:
    """The library's warnings on stderr once each, as ``rac-store: WARNING: ...``.

    A store gives a start-up warning both as a log record and as a Python warning
    (:mod:`rac_store.server_checks`); a command shows the log record only.
    """
    logger = logging.getLogger("rac_store")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rac-store: %(levelname)s: %(message)s"))
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings():
            for category in (PersistenceWarning, EvictionPolicyWarning):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


# -- long-running commands ------------------------------------------------------------
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
