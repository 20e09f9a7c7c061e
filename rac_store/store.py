"""AuditStore: the synchronous store, on Redis or on the embedded default."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import RedisClusterException

from . import core
from .connect import client_from_url, is_cluster
from .core import DEFAULT_FINDINGS_MAXLEN, Call, CommandCall, Retrier, RetryPolicy, ScriptCall
from .embedded import create_embedded_client
from .errors import (
    DurabilityNotConfirmedError,
    RACStoreError,
    UnsupportedServerError,
    map_redis_error,
)
from .metrics import MetricsOption
from .models import AckOutcome, AuditExpectation, AuditStatus, DomainAck
from .routing import ClusterRouter
from .scripts import SCRIPT_NAMES, load_source
from .server_checks import INFO_SECTIONS, info_denied
from .store_base import StoreBase
from .wait_aof import WaitAof, as_wait_aof


class AuditStore(StoreBase):
    """Expectations and acks of runs, kept in Redis by atomic Lua scripts.

    With no ``redis_client`` the environment decides (see
    :mod:`rac_store.durability`): ``RAC_REDIS_URL`` connects to Redis, and
    otherwise, in ``AOS_MODE=local``, the same scripts run on an embedded
    in-process server. ``findings_maxlen`` bounds each shard's findings stream;
    ``metrics`` counts acks (see :mod:`rac_store.metrics`; ``False`` for none).

    ``redis_client`` may be a ``redis.Redis``, a ``redis.cluster.RedisCluster``
    (every call touches one hash slot; see docs/cluster.md) or a fakeredis client.
    """

    def __init__(
        self,
        redis_client: Any = None,
        *,
        prefix: str = "rac",
        ttl_seconds: int = 3600,
        shards: int = 16,
        retry: RetryPolicy | None = None,
        findings_maxlen: int = DEFAULT_FINDINGS_MAXLEN,
        metrics: MetricsOption = None,
        check_server: bool = True,
        wait_aof: bool | WaitAof | None = None,
    ) -> None:
        """Connect (or start the embedded server) and check the server and layout.

        ``check_server`` runs the start-up checks of :mod:`rac_store.server_checks`
        (Redis >= 7, eviction policy; skipped on the embedded backend).
        ``wait_aof`` (``True`` or a :class:`WaitAof`) makes every write wait for
        the AOF with ``WAITAOF`` (Redis >= 7.2 with ``appendonly yes``).
        """
        super().__init__(
            redis_client,
            client_from_url,
            create_embedded_client,
            prefix=prefix,
            ttl_seconds=ttl_seconds,
            shards=shards,
            retry=retry,
            findings_maxlen=findings_maxlen,
            metrics=metrics,
            wait_aof=as_wait_aof(wait_aof),
        )
        self._router = ClusterRouter()
        self._writes = frozenset(name for name in SCRIPT_NAMES if not load_source(name).read_only)
        if self._wait_aof is not None and is_cluster(self._client):
            raise UnsupportedServerError("wait_aof is not supported on a Redis Cluster")
        if check_server and not self._embedded:
            self._check_server()
        self._call(self._core.init_meta())

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool | None = None,
        client_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AuditStore:
        """A store on the Redis at ``url`` (``redis://``, ``rediss://``, ``unix://``).

        A Redis Cluster is named by ``redis+cluster://`` / ``rediss+cluster://``, or by
        ``cluster=True`` with a plain URL (see :mod:`rac_store.connect`).
        ``client_options`` go to redis-py's ``from_url`` (e.g. ``ssl_ca_certs``,
        ``socket_timeout``, ``username``); ``options`` go to the store.
        """
        client = client_from_url(url, cluster=cluster, **(client_options or {}))
        return cls(client, **options)

    # -- writes -----------------------------------------------------------------------
    def add_expectations(
        self, run_id: uuid.UUID | str, expectations: Iterable[AuditExpectation]
    ) -> int:
        """Declare expectations; returns how many were new (re-adding is a no-op)."""
        return core.parse_count(self._call(self._core.add_expectations(run_id, expectations)))

    def add_ack(self, run_id: uuid.UUID | str, ack: DomainAck) -> AckOutcome:
        """Record one ack: recorded, duplicate, drift or late (one EVALSHA)."""
        outcome = core.parse_outcome(self._call(self._core.add_ack(run_id, ack)))
        if self._metrics is not None:
            self._metrics.observe_acks((outcome,))
        return outcome

    def add_acks(self, run_id: uuid.UUID | str, acks: Iterable[DomainAck]) -> list[AckOutcome]:
        """Record many acks of one run in one call; one outcome per ack, in order."""
        outcomes = core.parse_outcomes(self._call(self._core.add_acks(run_id, acks)))
        if self._metrics is not None:
            self._metrics.observe_acks(outcomes)
        return outcomes

    def update_expectation_status(
        self, run_id: uuid.UUID | str, domain: str, action: str, status: AuditStatus | str
    ) -> bool:
        """Move an expectation to ``status``; False when it does not exist.

        Raises InvalidTransitionError for a move the state machine forbids.
        """
        return bool(self._call(self._core.update_status(run_id, domain, action, status)))

    def clear_run(self, run_id: uuid.UUID | str) -> bool:
        """Delete all data of a run; True when there was any."""
        return bool(self._call(self._core.clear_run(run_id)))

    # -- reads ------------------------------------------------------------------------
    def get_expectations(self, run_id: uuid.UUID | str) -> list[AuditExpectation]:
        """The run's expectations with their current status."""
        return core.parse_expectations(self._call(self._core.read_expectations(run_id)))

    def get_acks(self, run_id: uuid.UUID | str) -> list[DomainAck]:
        """The run's acks in arrival order (duplicates excluded)."""
        key = self._core.acks_key(run_id)
        return core.parse_acks(self._read("get_acks", lambda: self._client.lrange(key, 0, -1)))

    def load_from_redis(self, run_id: uuid.UUID | str) -> bool:
        """True when the store holds any data of the run."""
        keys = self._core.existence_keys(run_id)
        return bool(self._read("load_from_redis", lambda: self._client.exists(*keys)))

    def get_pending_run_ids(
        self, *, due_before: datetime | int | None = None, limit: int | None = None
    ) -> list[str]:
        """Runs with a PENDING expectation, earliest due first, from every shard.

        ``due_before`` (aware datetime or epoch ms, server clock) keeps only runs
        whose earliest deadline is at or before it.
        """
        queries = self._core.pending_queries(due_before, limit)

        def read() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            core.queue_pending_reads(pipe, queries)
            return list(pipe.execute())

        return core.merge_pending(self._read("get_pending_run_ids", read), limit)

    def server_time_ms(self) -> int:
        """The server's clock in epoch milliseconds (the clock deadlines use)."""
        return core.parse_server_time(self._read("server_time_ms", self._client.time))

    # -- I/O --------------------------------------------------------------------------
    def _check_server(self) -> None:
        """Run the start-up checks on ``INFO``; warn or raise (see server_checks)."""

        def read_info() -> Any:
            try:
                return self._client.info(*INFO_SECTIONS)
            except redis.exceptions.NoPermissionError as exc:
                raise info_denied(exc) from exc

        self._apply_server_checks(self._read("start-up checks", read_info))

    def execute(self, call: Call) -> Any:
        """Send one call built by the sans-I/O core; the raw reply (a list for commands).

        The low-level hook the reconciler uses: same retries and error mapping as
        every other method.
        """
        if isinstance(call, CommandCall):
            return self._read(call.operation, lambda: self._pipeline(call))
        return self._call(call)

    def _pipeline(self, call: CommandCall) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for command in call.commands:
            pipe.execute_command(*command)
        return list(pipe.execute())

    def _call(self, call: ScriptCall) -> Any:
        script = self._scripts[call.script]
        if self._wait_aof is not None and call.script in self._writes:
            wait = self._wait_aof
            return self._read(call.operation, lambda: self._send_durable(script, call, wait))
        client = self._client
        if is_cluster(client):
            return self._read(call.operation, lambda: self._send(script, call))
        # The hot path: one EVALSHA with the registered script's SHA (no Script.__call__,
        # no retry closure); everything else only after a failure.
        try:
            return client.evalsha(script.sha, len(call.keys), *call.keys, *call.args)
        except redis.exceptions.NoScriptError:
            return self._read(call.operation, lambda: self._reload_and_send(script, call))
        except redis.RedisError as exc:
            retrier = self._retry.retrier()
            delay = retrier.delay_after(exc)
            if delay is None:
                raise map_redis_error(exc, call.operation) from exc
            time.sleep(delay)
            return self._read(call.operation, lambda: self._send(script, call), retrier)

    def _reload_and_send(self, script: Script, call: ScriptCall) -> Any:
        """After NOSCRIPT on the hot path: load the script, then send as :meth:`_send`."""
        self._client.script_load(script.script)
        return self._send(script, call)

    def _send(self, script: Script, call: ScriptCall) -> Any:
        """EVALSHA (redis-py reloads once on NOSCRIPT); EVAL when the cache empties again.

        On a Redis Cluster the EVALSHA goes straight to the slot's primary
        (:mod:`rac_store.routing`).
        """
        client = self._client
        try:
            if is_cluster(client):
                return self._router.run(client, script, call.keys, call.args)
            return script(call.keys, call.args, client)
        except redis.exceptions.NoScriptError:
            # Flushed again between redis-py's reload and its re-send (SCRIPT FLUSH,
            # restart, failover): the body itself cannot miss. The script did not run.
            return client.eval(script.script, len(call.keys), *call.keys, *call.args)

    def _send_durable(self, script: Script, call: ScriptCall, wait: WaitAof) -> Any:
        """The write and its WAITAOF in one pipeline: one connection, so the wait covers it."""
        for by_body in (False, True):
            pipe = self._client.pipeline(transaction=False)
            command = ("EVAL", script.script) if by_body else ("EVALSHA", script.sha)
            pipe.execute_command(*command, len(call.keys), *call.keys, *call.args)
            pipe.execute_command(*wait.command())
            reply, acked = pipe.execute(raise_on_error=False)
            if isinstance(reply, redis.exceptions.NoScriptError) and not by_body:
                continue  # the script did not run; send its body
            if isinstance(reply, Exception):
                raise reply
            if isinstance(acked, Exception):
                raise DurabilityNotConfirmedError(
                    f"{call.operation}: applied, but WAITAOF failed: {acked}"
                ) from acked
            wait.check(acked, call.operation)
            return reply
        raise RACStoreError(f"{call.operation}: no attempt was made")  # pragma: no cover

    def _read(self, operation: str, send: Any, retrier: Retrier | None = None) -> Any:
        """Run ``send``, re-sent as the retry policy allows; map Redis errors.

        ``retrier`` carries on the decisions of a call already tried once (the hot path).
        """
        retrier = retrier or self._retry.retrier()
        while True:
            try:
                return send()
            except (redis.RedisError, RedisClusterException) as exc:
                delay = retrier.delay_after(exc)
                if delay is None:
                    raise map_redis_error(exc, operation) from exc
                time.sleep(delay)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


_store: AuditStore | None = None
_store_lock = threading.Lock()


def get_audit_store(redis_client: Any = None) -> AuditStore:
    """The process-wide store, made on first call (``redis_client`` is used only then)."""
    global _store
    with _store_lock:
        if _store is None:
            _store = AuditStore(redis_client)
        return _store


def reset_audit_store() -> None:
    """Forget the process-wide store (for tests, or after a fork)."""
    global _store
    with _store_lock:
        _store = None
