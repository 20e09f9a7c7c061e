"""How a sync store sends its calls: scripts, plain commands, retries and error mapping.

Every script call goes out as ``EVALSHA``; a NOSCRIPT reply (the server's
script cache was emptied) sends the same call once more as ``EVAL`` with the
script's text, which also loads it again. On a Redis Cluster the command goes
straight to the slot's primary (:mod:`rac_store.cluster.routing`); with
``wait_aof`` a write and its ``WAITAOF`` share one connection. Lost connections
and refusals are re-sent as the :class:`~rac_store.retry.RetryPolicy` allows,
and every Redis error reaches the caller as a typed
:class:`~rac_store.errors.RACStoreError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import redis
from redis.exceptions import NoScriptError, RedisClusterException

from .cluster import is_cluster
from .cluster.routing import ClusterRouter
from .connect import client_resends as client_resends_of
from .core import Call, CommandCall
from .direct import direct_sender
from .errors import DurabilityNotConfirmedError, ReadOnlyStoreError, map_redis_error
from .retry import Retrier, RetryPolicy
from .scripts import LoadedScript, Script, ScriptCall
from .wait_aof import WaitAof

T = TypeVar("T")

RedisFailure = (redis.RedisError, RedisClusterException)
"""What a Redis call can fail with (mapped to a RACStoreError before it reaches callers)."""


class WriteGuard:
    """Refuses, before anything is sent, the writes of a store opened read-only."""

    def __init__(self, scripts: Mapping[Script, LoadedScript], read_only: bool) -> None:
        self.read_only = read_only
        self._refused = frozenset(
            name for name, loaded in scripts.items() if read_only and not loaded.read_only
        )

    def check(self, call: Call) -> None:
        """ReadOnlyStoreError when ``call`` writes and the store is read-only."""
        writes = call.writes if isinstance(call, CommandCall) else call.script in self._refused
        if writes and self.read_only:
            raise ReadOnlyStoreError(f"{call.operation}: this store was opened read-only")


class SenderBase:
    """What both senders hold: the client, the scripts, the retry policy, the write guard.

    ``client_resends`` is how often the client re-sends a command by itself after a
    lost connection (None: read from the client, :func:`rac_store.connect.client_resends`);
    those sends count against the policy's ``attempts`` rather than multiply them.
    """

    def __init__(
        self,
        client: Any,
        scripts: Mapping[Script, LoadedScript],
        retry: RetryPolicy,
        read_only: bool,
        client_resends: int | None = None,
    ) -> None:
        self._client = client
        self._scripts = scripts
        self.retry = retry
        self._guard = WriteGuard(scripts, read_only)
        self.client_resends = (
            client_resends_of(client) if client_resends is None else client_resends
        )

    def retrier(self, client_resends: int | None = None) -> Retrier:
        """The retry decisions of one call sent through the client (or, with
        ``client_resends=0``, straight on a connection)."""
        resends = self.client_resends if client_resends is None else client_resends
        return self.retry.retrier(client_resends=resends)


class Sender(SenderBase):
    """Sends the calls of one sync store on its client."""

    def __init__(
        self,
        client: Any,
        scripts: Mapping[Script, LoadedScript],
        retry: RetryPolicy,
        wait_aof: WaitAof | None = None,
        *,
        read_only: bool = False,
        client_resends: int | None = None,
    ) -> None:
        super().__init__(client, scripts, retry, read_only, client_resends)
        self._wait_aof = wait_aof
        self.router = ClusterRouter(client) if is_cluster(client) else None
        """The cluster short path (None on a single node)."""
        self._plain = self.router is None and wait_aof is None and not read_only
        # Issue 16: the hot path's EVALSHA skips redis-py's per-call overhead where that is
        # known to change nothing (rac_store/direct.py); otherwise execute_command sends it.
        direct = direct_sender(client) if self._plain else None
        self._send_hot: Callable[[tuple[Any, ...]], Any] = direct or (
            lambda command: client.execute_command(*command)
        )

    def execute(self, call: Call) -> Any:
        """The raw reply of ``call`` (a list of replies for plain commands)."""
        if isinstance(call, CommandCall):
            self._guard.check(call)
            return self.retrying(call.operation, lambda: self._pipeline(call))
        loaded = self._scripts[call.script]
        if not self._plain:
            self._guard.check(call)
            return self.retrying(call.operation, lambda: self._send(loaded, call))
        # The hot path: one EVALSHA, no closure and no retry state until something fails.
        # ``_send_hot`` raises what execute_command raises, so recovery is the same.
        try:
            return self._send_hot(loaded.command(call))
        except RedisFailure as exc:
            return self._recover(loaded, call, exc)

    def _recover(
        self, loaded: LoadedScript, call: ScriptCall, exc: redis.RedisError | RedisClusterException
    ) -> Any:
        """After the hot path's EVALSHA failed with ``exc``: the text on NOSCRIPT, else re-sends."""
        if isinstance(exc, NoScriptError):
            by_body = loaded.command(call, by_body=True)
            return self.retrying(call.operation, lambda: self._client.execute_command(*by_body))
        retrier = self.retrier()
        delay = retrier.delay_after(exc)
        if delay is None:
            raise map_redis_error(exc, call.operation) from exc
        time.sleep(delay)
        return self.retrying(call.operation, lambda: self._send(loaded, call), retrier)

    def _send(self, loaded: LoadedScript, call: ScriptCall) -> Any:
        """EVALSHA, and EVAL with the text when the server does not have the script."""
        if self._wait_aof is not None and not loaded.read_only:
            return self._send_durable(loaded, call, self._wait_aof)
        try:
            return self._command(loaded.command(call), call.keys[0])
        except NoScriptError:
            return self._command(loaded.command(call, by_body=True), call.keys[0])

    def _command(self, command: tuple[Any, ...], key: str) -> Any:
        if self.router is not None:
            return self.router.execute(command, key)
        return self._client.execute_command(*command)

    def _send_durable(self, loaded: LoadedScript, call: ScriptCall, wait: WaitAof) -> Any:
        """The write and its WAITAOF in one pipeline: one connection, so the wait covers it."""
        for by_body in (False, True):
            pipe = self._client.pipeline(transaction=False)
            pipe.execute_command(*loaded.command(call, by_body))
            pipe.execute_command(*wait.command())
            reply, acked = pipe.execute(raise_on_error=False)
            if isinstance(reply, NoScriptError) and not by_body:
                continue  # the script did not run; send its text
            if isinstance(reply, Exception):
                raise reply
            if isinstance(acked, Exception):
                raise DurabilityNotConfirmedError(
                    f"{call.operation}: applied, but WAITAOF failed: {acked}"
                ) from acked
            wait.check(acked, call.operation)
            return reply
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _pipeline(self, call: CommandCall) -> list[Any]:
        if len(call.commands) == 1:
            return [self._client.execute_command(*call.commands[0])]
        pipe = self._client.pipeline(transaction=False)
        for command in call.commands:
            pipe.execute_command(*command)
        return list(pipe.execute())

    def retrying(self, operation: str, send: Callable[[], T], retrier: Retrier | None = None) -> T:
        """``send()``, re-sent as the retry policy allows; Redis errors mapped for the caller.

        ``retrier`` carries on the decisions of a call already tried once (the hot path).
        """
        retrier = retrier or self.retrier()
        while True:
            try:
                return send()
            except RedisFailure as exc:
                delay = retrier.delay_after(exc)
                if delay is None:
                    raise map_redis_error(exc, operation) from exc
                time.sleep(delay)
