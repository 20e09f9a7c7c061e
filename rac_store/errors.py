"""The typed errors of rac_store, and the mapping from Redis errors to them.

Every error the store raises is a :class:`RACStoreError`. An error that came
from Redis keeps it as ``__cause__``; nothing is swallowed.
"""

from __future__ import annotations

import ssl

import redis.exceptions as rexc


class RACStoreError(Exception):
    """Base class of every error rac_store raises."""


class RACDurabilityError(RACStoreError):
    """Durable storage is required (AOS_MODE test/prod) but none is configured."""


class InvalidInputError(RACStoreError, ValueError):
    """An argument was rejected before anything was written."""


class RunNotFoundError(RACStoreError, LookupError):
    """The store holds no data of the run (never written, cleared or expired)."""


class StoreNotFoundError(RACStoreError, LookupError):
    """No store exists under the prefix (a read-only store never creates one)."""


class ReadOnlyStoreError(RACStoreError):
    """A write was asked of a store opened with ``read_only=True``; nothing was sent."""


class InvalidTransitionError(RACStoreError):
    """The status state machine forbids the requested move; nothing changed."""


class LayoutMismatchError(RACStoreError):
    """The server holds a store with another shard count or key layout."""


class StoreUnavailableError(RACStoreError):
    """Redis could not be reached (after the bounded retries)."""


class StoreOutOfMemoryError(RACStoreError):
    """Redis refused a write because it is at ``maxmemory``; nothing changed."""


class StorePermissionError(RACStoreError):
    """The Redis user may not run this command or touch this key."""


class StoreResponseError(RACStoreError):
    """Redis answered with an error that has no more specific class."""


class StoreDataError(RACStoreError):
    """A stored record cannot be read: it was not written by this store (or this version).

    What the store writes always reads back (its checks bound what it accepts);
    this is what a read raises instead of a decoder's own error when something
    else wrote the run's keys.
    """


class StoreResetError(RACStoreError):
    """The server lost the store's data since this store opened (a restart without
    persistence, a flush): the shard's epoch key is gone or was made anew.

    Nothing was written. Acks sent now would be recorded against nothing (as drift),
    so the store refuses them. Open a new store to go on (its expectations must be
    declared again), and treat the runs in flight as lost. See docs/reliability.md.
    """


class UnsupportedServerError(RACStoreError):
    """The server lacks something the store needs (version, configuration)."""


class DurabilityNotConfirmedError(RACStoreError):
    """The write was applied, but the server did not confirm it reached the AOF.

    Raised by a store made with ``wait_aof`` when ``WAITAOF`` times out or fails.
    The write itself happened in memory; re-sending the call is safe (every
    script is idempotent) and waits again.
    """


class EmbeddedStoreInOtherProcessError(RACStoreError):
    """An embedded (in-process) store was used from a process its server does not live in.

    Its acks would never reach the process that reads them: share one store between
    processes with ``rac-store serve`` and ``AuditStore.from_url(...)``, or a Redis
    (``RAC_REDIS_URL``). Nothing was written.
    """


class StoreTLSError(RACStoreError):
    """The TLS handshake failed (e.g. the server's certificate is not signed by the
    configured CA). Never retried: the store fails closed."""


_SCRIPT_ERROR_CODES: dict[str, type[RACStoreError]] = {
    "RAC_BADARG": InvalidInputError,
    "RAC_TRANSITION": InvalidTransitionError,
    "RAC_SHARDS": LayoutMismatchError,
    "RAC_LAYOUT": LayoutMismatchError,
    "RAC_RESET": StoreResetError,
    "OOM": StoreOutOfMemoryError,
    "NOPERM": StorePermissionError,
    "NOAUTH": StorePermissionError,
    "WRONGPASS": StorePermissionError,
}

_SCRIPT_ACL_DENIAL = "The user executing the script can't"
"""Redis 7.0's text (no NOPERM code) when a command inside a script is denied by the ACL."""

RETRYABLE_ERRORS: tuple[type[Exception], ...] = (rexc.ConnectionError, rexc.TimeoutError)
"""Errors after which re-sending is safe, because every script is idempotent."""

CLUSTER_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    rexc.TryAgainError,
    rexc.ClusterError,
    rexc.SlotNotCoveredError,
)
"""Redis Cluster is moving or electing the keys' slot: nothing ran, try later."""

NOT_EXECUTED_ERRORS: tuple[type[Exception], ...] = (
    *CLUSTER_UNAVAILABLE_ERRORS,
    rexc.NoScriptError,
)
"""Replies that say the command did not run, so re-sending it is safe.

``TRYAGAIN``: the slot is being migrated and the keys are split between two
nodes; ``CLUSTERDOWN`` and redis-py's "TTL exhausted" (too many MOVED/ASK/TRYAGAIN
in a row) are ``ClusterError``; ``NOSCRIPT`` can follow a reload when a failover
promoted a node with an empty script cache between the reload and the re-send;
a slot no node serves (yet) during a failover.
"""


def tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a connection error, if there is one."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain is short; bound it anyway
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def is_retryable(exc: BaseException) -> bool:
    """True for a lost connection or a timeout; never for a refused login or a bad TLS peer."""
    return (
        isinstance(exc, RETRYABLE_ERRORS)
        and not isinstance(exc, rexc.AuthenticationError)
        and tls_failure(exc) is None
    )


def is_busy(exc: BaseException) -> bool:
    """True for ``BUSY``: the server is running a script past ``busy-reply-threshold`` (e.g.
    someone's endless EVAL) and refused the command without running it."""
    return isinstance(exc, rexc.ResponseError) and str(exc).startswith("BUSY ")


def was_not_executed(exc: BaseException) -> bool:
    """True for a reply saying the command did not run (see NOT_EXECUTED_ERRORS, and BUSY)."""
    return isinstance(exc, NOT_EXECUTED_ERRORS) or is_busy(exc)


_TRANSPORT_MODULES = (
    "redis/asyncio/connection.py",
    "asyncio/streams.py",
    "asyncio/selector_events.py",
)


def transport_fault(exc: BaseException) -> rexc.ConnectionError | None:
    """A lost connection, for an AttributeError/TypeError raised inside asyncio's transport.

    redis-py's asyncio client can touch a connection that another task (a cluster
    topology refresh) or the peer has just torn down; the error then escapes as
    ``'NoneType' object has no attribute 'writelines'`` or similar instead of a
    ConnectionError (redis/redis-py#4287). Only errors raised in the transport code
    itself qualify; anything else is a bug and stays what it is.
    """
    if not isinstance(exc, AttributeError | TypeError):
        return None
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename.replace("\\", "/") if tb is not None else ""
    if not where.endswith(_TRANSPORT_MODULES):
        return None
    lost = rexc.ConnectionError(f"connection torn down mid-command: {exc}")
    lost.__cause__ = exc
    return lost


def _error_code(message: str) -> str:
    """The leading code of a Redis error text ("OOM command not allowed" -> "OOM")."""
    # Redis wraps script errors as "Error running script ...: @user_script:...: CODE text"
    # on some paths; the code is the first word that is one of ours.
    for word in message.replace(":", " ").split():
        if word in _SCRIPT_ERROR_CODES:
            return word
    return message.split(" ", 1)[0]


def _cluster_error(exc: BaseException, operation: str) -> RACStoreError:
    """A Redis Cluster that moves or elects the keys' slot, or a client-side cluster refusal."""
    if isinstance(exc, CLUSTER_UNAVAILABLE_ERRORS):
        return StoreUnavailableError(f"{operation}: Redis Cluster not serving the keys: {exc}")
    return StoreResponseError(f"{operation}: {exc}")


def map_redis_error(
    exc: rexc.RedisError | rexc.RedisClusterException, operation: str
) -> RACStoreError:
    """The RACStoreError for a Redis error raised during ``operation``.

    The caller raises the result ``from exc`` so that the Redis error is chained.
    """
    message = str(exc)
    if tls_failure(exc) is not None:
        return StoreTLSError(f"{operation}: TLS handshake failed: {message}")
    if isinstance(exc, rexc.NoPermissionError | rexc.AuthenticationError) or (
        _SCRIPT_ACL_DENIAL in message
    ):
        return StorePermissionError(f"{operation}: {message}")
    if isinstance(exc, RETRYABLE_ERRORS) or is_busy(exc):
        why = "Redis busy running a script" if is_busy(exc) else "Redis unreachable"
        return StoreUnavailableError(f"{operation}: {why}: {message}")
    if isinstance(exc, (*CLUSTER_UNAVAILABLE_ERRORS, rexc.RedisClusterException)):
        return _cluster_error(exc, operation)
    if isinstance(exc, rexc.OutOfMemoryError):
        return StoreOutOfMemoryError(f"{operation}: {message}")
    error_class = _SCRIPT_ERROR_CODES.get(_error_code(message), StoreResponseError)
    return error_class(f"{operation}: {message}")
