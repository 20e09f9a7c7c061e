"""AsyncAuditStore: the asyncio store, on ``redis.asyncio`` or on the embedded default.

Every method of :class:`~rac_store.store.AuditStore` is here as a coroutine. Keys,
arguments, reply parsing, retries and error mapping come from the same sans-I/O
core; only the awaiting differs. ``add_ack`` is auto-pipelined by default (see
:mod:`rac_store.autopipeline`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

import redis
import redis.asyncio

from . import core
from .aio_retry import RedisFailure, resend
from .autopipeline import DEFAULT_MAX_BATCH, AckPipeline
from .connect import async_client_from_url, split_cluster_url
from .core import DEFAULT_FINDINGS_MAXLEN, Call, CommandCall, RetryPolicy, ScriptCall
from .embedded import create_embedded_async_client
from .errors import map_redis_error
from .metrics import MetricsOption
from .models import AckOutcome, AuditExpectation, AuditStatus, DomainAck
from .server_checks import INFO_SECTIONS, info_denied
from .store_base import StoreBase

POOL_SIZE = 64
"""Connections of a client the store makes itself (``from_url``, ``RAC_REDIS_URL``)."""


def connect(url: str, max_connections: int = POOL_SIZE, *, cluster: bool | None = None) -> Any:
    """An asyncio client of ``url`` whose callers wait for a free connection rather than fail.

    redis.asyncio's default pool raises "Too many connections" past 100 concurrent
    commands; a blocking pool queues them instead. A cluster URL (see
    :mod:`rac_store.connect`) gives a ``redis.asyncio.cluster.RedisCluster``.
    """
    plain, is_cluster_url = split_cluster_url(url, cluster)
    if is_cluster_url:
        return async_client_from_url(plain, cluster=True)
    pool = redis.asyncio.BlockingConnectionPool.from_url(plain, max_connections=max_connections)
    return redis.asyncio.Redis.from_pool(pool)


class AsyncAuditStore(StoreBase):
    """Expectations and acks of runs, kept in Redis by atomic Lua scripts, for asyncio.

    Takes the options of :class:`~rac_store.store.AuditStore` and the same
    durability rules: with no ``redis_client`` the environment decides
    (``RAC_REDIS_URL``, else the embedded in-process server in ``AOS_MODE=local``).
    ``redis_client`` is a ``redis.asyncio.Redis``, a ``redis.asyncio.cluster.RedisCluster``
    (see docs/cluster.md) or a ``fakeredis.FakeAsyncRedis``.

    The constructor does no I/O. The server (``check_server``, as for AuditStore)
    and the shard count and layout are checked once, by :meth:`initialize`
    (``async with`` calls it) or else before the first command.

    ``autopipeline`` (default on) sends the ``add_ack`` calls made while a round
    trip is in flight together in the next one, at most ``autopipeline_batch``
    acks per trip. Each caller still gets its own outcome or error.
    """

    def __init__(
        self,
        redis_client: Any = None,
        *,
        prefix: str = "rac",
        ttl_seconds: int = 3600,
        shards: int = 16,
        retry: RetryPolicy | None = None,
        autopipeline: bool = True,
        autopipeline_batch: int = DEFAULT_MAX_BATCH,
        findings_maxlen: int = DEFAULT_FINDINGS_MAXLEN,
        metrics: MetricsOption = None,
        check_server: bool = True,
    ) -> None:
        super().__init__(
            redis_client,
            connect,
            create_embedded_async_client,
            prefix=prefix,
            ttl_seconds=ttl_seconds,
            shards=shards,
            retry=retry,
            findings_maxlen=findings_maxlen,
            metrics=metrics,
        )
        self._check_server = check_server and not self._embedded
        self._initialized = False
        self._init_lock = asyncio.Lock()
        self._acks: AckPipeline | None = None
        if autopipeline:
            self._acks = AckPipeline(
                self._client,
                self._scripts["add_acks"],
                self._retry,
                self.initialize,
                max_batch=autopipeline_batch,
            )

    @classmethod
    def from_url(cls, url: str, *, cluster: bool | None = None, **options: Any) -> AsyncAuditStore:
        """A store on the Redis at ``url`` (``redis://``, ``rediss://``, ``unix://``).

        A Redis Cluster is named by ``redis+cluster://`` / ``rediss+cluster://``, or by
        ``cluster=True`` with a plain URL (see :mod:`rac_store.connect`).
        """
        return cls(connect(url, cluster=cluster), **options)

    async def initialize(self) -> None:
        """Check the server, then record (or check) the shard count and layout.

        Runs once; later calls return at once. Raises UnsupportedServerError for
        a server the start-up checks refuse (rac_store.server_checks) and
        LayoutMismatchError when the server holds another layout.
        """
        if self._initialized:
            return
        async with self._init_lock:
            if not self._initialized:
                if self._check_server:
                    self._apply_server_checks(
                        await self._retrying("start-up checks", self._read_info)
                    )
                call = self._core.init_meta()
                await self._retrying(call.operation, lambda: self._send(call))
                self._initialized = True

    async def _read_info(self) -> Any:
        try:
            return await self._client.info(*INFO_SECTIONS)
        except redis.exceptions.NoPermissionError as exc:
            raise info_denied(exc) from exc

    async def __aenter__(self) -> AsyncAuditStore:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- properties -------------------------------------------------------------------
    @property
    def autopipeline(self) -> AckPipeline | None:
        """The ack pipeline, or None when auto-pipelining is off."""
        return self._acks

    # -- writes -----------------------------------------------------------------------
    async def add_expectations(
        self, run_id: uuid.UUID | str, expectations: Iterable[AuditExpectation]
    ) -> int:
        """Declare expectations; returns how many were new (re-adding is a no-op)."""
        return core.parse_count(await self._call(self._core.add_expectations(run_id, expectations)))

    async def add_ack(self, run_id: uuid.UUID | str, ack: DomainAck) -> AckOutcome:
        """Record one ack: recorded, duplicate, drift or late.

        The ack is validated at once (InvalidInputError fails only this call). With
        auto-pipelining it is then queued and sent with the acks of other callers;
        once queued it is sent even if this coroutine is cancelled.
        """
        call = self._core.add_ack(run_id, ack)
        if self._acks is not None:
            outcome = await self._acks.submit(call)
        else:
            outcome = core.parse_outcomes(await self._call(call))[0]
        if self._metrics is not None:
            self._metrics.observe_acks((outcome,))
        return outcome

    async def add_acks(
        self, run_id: uuid.UUID | str, acks: Iterable[DomainAck]
    ) -> list[AckOutcome]:
        """Record many acks of one run in one call; one outcome per ack, in order."""
        outcomes = core.parse_outcomes(await self._call(self._core.add_acks(run_id, acks)))
        if self._metrics is not None:
            self._metrics.observe_acks(outcomes)
        return outcomes

    async def update_expectation_status(
        self, run_id: uuid.UUID | str, domain: str, action: str, status: AuditStatus | str
    ) -> bool:
        """Move an expectation to ``status``; False when it does not exist.

        Raises InvalidTransitionError for a move the state machine forbids.
        """
        return bool(await self._call(self._core.update_status(run_id, domain, action, status)))

    async def clear_run(self, run_id: uuid.UUID | str) -> bool:
        """Delete all data of a run; True when there was any."""
        return bool(await self._call(self._core.clear_run(run_id)))

    # -- reads ------------------------------------------------------------------------
    async def get_expectations(self, run_id: uuid.UUID | str) -> list[AuditExpectation]:
        """The run's expectations with their current status."""
        return core.parse_expectations(await self._call(self._core.read_expectations(run_id)))

    async def get_acks(self, run_id: uuid.UUID | str) -> list[DomainAck]:
        """The run's acks in arrival order (duplicates excluded)."""
        key = self._core.acks_key(run_id)
        return core.parse_acks(
            await self._read("get_acks", lambda: self._client.lrange(key, 0, -1))
        )

    async def load_from_redis(self, run_id: uuid.UUID | str) -> bool:
        """True when the store holds any data of the run."""
        keys = self._core.existence_keys(run_id)
        return bool(await self._read("load_from_redis", lambda: self._client.exists(*keys)))

    async def get_pending_run_ids(
        self, *, due_before: datetime | int | None = None, limit: int | None = None
    ) -> list[str]:
        """Runs with a PENDING expectation, earliest due first, from every shard.

        ``due_before`` (aware datetime or epoch ms, server clock) keeps only runs
        whose earliest deadline is at or before it.
        """
        queries = self._core.pending_queries(due_before, limit)

        async def read() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            core.queue_pending_reads(pipe, queries)
            return list(await pipe.execute())

        return core.merge_pending(await self._read("get_pending_run_ids", read), limit)

    async def server_time_ms(self) -> int:
        """The server's clock in epoch milliseconds (the clock deadlines use)."""
        return core.parse_server_time(await self._read("server_time_ms", self._client.time))

    # -- lifetime ---------------------------------------------------------------------
    async def flush(self) -> None:
        """Wait until every ack queued by ``add_ack`` so far has been sent and answered.

        Raises RACStoreError when an ack whose caller was cancelled could not be
        recorded since the last flush (its error has nobody else to reach).
        """
        if self._acks is not None:
            await self._acks.flush()

    async def aclose(self) -> None:
        """Send the queued acks, then close the client's connections (also when flush raises)."""
        try:
            await self.flush()
        finally:
            await self._client.aclose()

    # -- I/O --------------------------------------------------------------------------
    async def execute(self, call: Call) -> Any:
        """Send one call built by the sans-I/O core; the raw reply (a list for commands).

        The low-level hook :class:`~rac_store.reconciler_async.AsyncAuditReconciler`
        uses: same retries and error mapping as every other method.
        """
        if not isinstance(call, CommandCall):
            return await self._call(call)

        async def send() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for command in call.commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())

        return await self._read(call.operation, send)

    async def _call(self, call: ScriptCall) -> Any:
        return await self._read(call.operation, lambda: self._send(call))

    async def _send(self, call: ScriptCall) -> Any:
        """EVALSHA (redis-py reloads once on NOSCRIPT); EVAL when the cache empties again."""
        script = self._scripts[call.script]
        try:
            return await script(call.keys, call.args, self._client)
        except redis.exceptions.NoScriptError:
            # Flushed again between the reload and the re-send: the script did not run.
            return await self._client.eval(script.script, len(call.keys), *call.keys, *call.args)

    async def _read(self, operation: str, send: Callable[[], Awaitable[Any]]) -> Any:
        if not self._initialized:
            await self.initialize()
        return await self._retrying(operation, send)

    async def _retrying(self, operation: str, send: Callable[[], Awaitable[Any]]) -> Any:
        """Await ``send()``, re-sent as the retry policy allows; map Redis errors."""
        try:
            return await resend(send, self._retry)
        except RedisFailure as exc:
            raise map_redis_error(exc, operation) from exc
