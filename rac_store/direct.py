"""One command sent as ``redis.Redis.execute_command`` sends it, without its per-call overhead.

redis-py's ``Redis.execute_command`` spends ~20 µs of client CPU per call on this
project's shared benchmark machine beyond what the command itself needs (redis-py 8:
telemetry hooks, closures, a Python-level walk over every argument before hiredis
packs them, the response-callback lookup): a third of the client instructions of an
``add_ack`` (callgrind: 233,384 with it, 159,156 without; BENCHMARKS.md).
:class:`DirectSender` does for one command only what that method does with it: borrow
a connection from the client's pool, pack the command with hiredis's C packer, send it
and read the reply under the connection's own ``Retry`` (which disconnects after each
failure before trying again, as redis-py does), and give the connection back (the
pool's ``release`` handles a connection marked for reconnection, as for any other).
The reply and the errors are those ``execute_command`` gives: the same connection,
parser and exceptions.

:func:`direct_sender` gives one only where that equivalence is known: a
``redis.Redis`` whose ``execute_command`` is redis-py's own (not wrapped by a tracer,
a subclass or a test proxy), redis-py >= 6 (whose ``execute_command`` is exactly
``conn.retry.call_with_retry(send and read, disconnect)``), no response callback for
``EVALSHA`` (the store sends script calls this way), a pool of redis-py's own
connections without client-side caching, no single-connection client, UTF-8 text,
and redis-py's OpenTelemetry metrics off (they would miss the calls sent here).
Everything else keeps ``execute_command``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import hiredis
import redis

from .scripts import Arg

REDIS_PY_MAJOR = int(redis.__version__.split(".", 1)[0])
"""The installed redis-py's major version (the direct path needs >= 6)."""

Packer = Callable[[tuple[Any, ...]], bytes]
"""Packs one command (a tuple of its arguments) into the bytes sent to the server."""


def utf8_packer(client: Any) -> Packer | None:
    """hiredis's C packer when the client encodes text as strict UTF-8 (the default), else None.

    hiredis writes the same bytes as redis-py's packer for UTF-8 text, many times
    faster; a client with another encoding keeps redis-py's packer and its encoder.
    """
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    if kwargs is None:
        return None
    encoding = str(kwargs.get("encoding", "utf-8")).lower().replace("_", "-")
    if encoding in ("utf-8", "utf8") and kwargs.get("encoding_errors", "strict") == "strict":
        return hiredis.pack_command
    return None


def _is_redis_py_own(function: object, qualname: str) -> bool:
    """True for redis-py's own ``qualname`` in ``redis.client``, not wrapped by anyone."""
    return (
        getattr(function, "__module__", None) == "redis.client"
        and getattr(function, "__qualname__", None) == qualname
        and not hasattr(function, "__wrapped__")
    )


def _redis_telemetry_on() -> bool:
    """True when redis-py's own OpenTelemetry metrics are enabled (redis-py >= 8)."""
    try:
        recorder = importlib.import_module("redis.observability.recorder")
    except ImportError:
        return False
    return bool(recorder.is_enabled())


class DirectSender:
    """Sends one command on a pooled connection of a plain ``redis.Redis`` (see module doc)."""

    def __init__(self, pool: Any, pack: Packer) -> None:
        self._pool = pool
        self._pack = pack

    def __call__(self, command: tuple[Arg, ...]) -> Any:
        """The reply of ``command``, or the error ``execute_command`` would raise."""
        try:
            packed = (self._pack(command),)
        except TypeError as exc:  # what redis-py's hiredis serializer raises for a bad value
            raise redis.DataError(str(exc)) from exc
        pool = self._pool
        connection = pool.get_connection()
        try:

            def send_and_read() -> Any:
                connection.send_packed_command(packed)
                return connection.read_response()

            return connection.retry.call_with_retry(
                send_and_read, lambda _error: connection.disconnect()
            )
        finally:
            pool.release(connection)


def direct_sender(client: Any) -> DirectSender | None:
    """A :class:`DirectSender` for ``client``, or None where only ``execute_command`` is right."""
    if REDIS_PY_MAJOR < 6 or not isinstance(client, redis.Redis):
        return None
    if not _is_redis_py_own(type(client).execute_command, "Redis.execute_command"):
        return None
    pool = client.connection_pool
    connection_class = getattr(pool, "connection_class", None)
    if (
        "EVALSHA" in client.response_callbacks  # a reply parser set for script calls
        or getattr(client, "connection", None) is not None  # single_connection_client
        or getattr(pool, "cache", None) is not None  # client-side caching
        or not getattr(connection_class, "__module__", "").startswith("redis.")
    ):
        return None
    pack = utf8_packer(client)
    if pack is None or _redis_telemetry_on():
        return None
    return DirectSender(pool, pack)
