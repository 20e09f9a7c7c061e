"""AsyncAuditStore: the asyncio store, on ``redis.asyncio`` or on the embedded default.

Every method of :class:`~rac_store.store.AuditStore` is here as a coroutine. Keys,
arguments, reply parsing, retries and error mapping come from the same sans-I/O
core; only the awaiting differs (:mod:`rac_store.aio.sending`). ``add_ack`` is
auto-pipelined by default (see :mod:`rac_store.aio.autopipeline`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import redis

from .. import core
from ..acks import single_ack_group
from ..audited import F
from ..connect import async_client_from_url
from ..core import Call, StoreCore
from ..embedded import create_embedded_async_client
from ..errors import InvalidInputError
from ..models import AckOutcome, AuditExpectation, AuditStatus, DomainAck
from ..server_checks import INFO_SECTIONS, info_denied
from ..store_base import StoreBase, StoreOptions
from .audited import AsyncAudited, audit_async
from .autopipeline import DEFAULT_MAX_BATCH, AckPipeline
from .sending import AsyncSender

if TYPE_CHECKING:
    from typing_extensions import Unpack


def _flag(value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidInputError(f"autopipeline must be a bool: {value!r:.80}")


def _batch(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"autopipeline_batch must be a positive int: {value!r:.80}")


class AsyncAuditStore(StoreBase):
    """Expectations and acks of runs, kept in Redis by atomic Lua scripts, for asyncio.

    Takes the options of :class:`~rac_store.store.AuditStore`
    (:class:`~rac_store.store_base.StoreOptions`) and the same environment rules:
    with no ``redis_client`` the environment decides (``RAC_REDIS_URL``, else the
    embedded in-process server in ``AOS_MODE=local``).
    ``redis_client`` is a ``redis.asyncio.Redis``, a ``redis.asyncio.cluster.RedisCluster``
    (see docs/cluster.md) or a ``fakeredis.FakeAsyncRedis``.

    The constructor does no I/O. The server (``check_server``, as for AuditStore)
    and the shard count and layout are checked once, by :meth:`initialize`
    (``async with`` calls it) or else before the first command.

    ``autopipeline`` (default on) sends the ``add_ack`` calls made while a round
    trip is in flight together in the next one, at most ``autopipeline_batch``
    acks per trip. Each caller still gets its own outcome or error.
    """

    OWN_OPTIONS: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "autopipeline": _flag,
        "autopipeline_batch": _batch,
    }
    _client_from_url = staticmethod(async_client_from_url)

    def __init__(
        self,
        redis_client: Any = None,
        *,
        autopipeline: bool = True,
        autopipeline_batch: int = DEFAULT_MAX_BATCH,
        **options: Unpack[StoreOptions],
    ) -> None:
        _flag(autopipeline)
        _batch(autopipeline_batch)
        super().__init__(redis_client, async_client_from_url, create_embedded_async_client, options)
        self._check_server = self._check_server_at_start and not self._embedded
        self._initialized = False
        self._init_lock = asyncio.Lock()
        self._sender = AsyncSender(
            self._client, self._scripts, self._retry, read_only=self._read_only
        )
        self._acks: AckPipeline | None = None
        if autopipeline and not self._read_only:
            self._acks = AckPipeline(
                self._sender,
                self._client,
                self._core.ack_settings,  # its epochs fill in when the store opens
                self.initialize,
                max_batch=autopipeline_batch,
            )

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
                        await self._sender.retrying("start-up checks", self._read_info)
                    )
                epochs = self._opened(await self._sender.execute(self._layout_call()))
                while epochs is not None:
                    epochs = self._epochs_opened(epochs, await self._sender.execute(epochs))
                self._initialized = True

    async def _read_info(self) -> Any:
        try:
            return await self._client.info(*INFO_SECTIONS)
        except redis.exceptions.NoPermissionError as exc:
            raise info_denied(exc) from exc

    async def __aenter__(self) -> AsyncAuditStore:
        await self.initialize()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
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
        """See :meth:`AuditStore.add_expectations`."""
        call = (await self._opened_core()).add_expectations(run_id, expectations)
        return core.parse_count(await self.execute(call))

    async def add_ack(self, run_id: uuid.UUID | str, ack: DomainAck) -> AckOutcome:
        """Record one ack: recorded, duplicate, drift or late.

        The ack is validated at once (InvalidInputError fails only this call). With
        auto-pipelining it is then queued and sent with the acks of other callers;
        once queued it is sent even if this coroutine is cancelled.
        """
        if self._acks is not None:
            # validated and keyed now; sent (with the shard's epoch) once the store is open
            outcome = await self._acks.submit(single_ack_group(self._core.keys, run_id, ack))
        else:
            call = (await self._opened_core()).add_ack(run_id, ack)
            outcome = core.parse_outcome(await self.execute(call))
        if self._metrics is not None:
            self._metrics.observe_acks((outcome,))
        return outcome

    async def add_acks(
        self, run_id: uuid.UUID | str, acks: Iterable[DomainAck]
    ) -> list[AckOutcome]:
        """See :meth:`AuditStore.add_acks`."""
        call = (await self._opened_core()).add_acks(run_id, acks)
        outcomes = core.parse_outcomes(await self.execute(call))
        if self._metrics is not None:
            self._metrics.observe_acks(outcomes)
        return outcomes

    async def update_expectation_status(
        self, run_id: uuid.UUID | str, domain: str, action: str, status: AuditStatus | str
    ) -> bool:
        """See :meth:`AuditStore.update_expectation_status`."""
        call = (await self._opened_core()).update_status(run_id, domain, action, status)
        return bool(await self.execute(call))

    async def clear_run(self, run_id: uuid.UUID | str) -> bool:
        """See :meth:`AuditStore.clear_run`."""
        call = (await self._opened_core()).clear_run(run_id)
        return bool(await self.execute(call))

    # -- reads ------------------------------------------------------------------------
    async def get_expectations(self, run_id: uuid.UUID | str) -> list[AuditExpectation]:
        """See :meth:`AuditStore.get_expectations`."""
        call = (await self._opened_core()).read_expectations(run_id)
        return core.parse_expectations(await self.execute(call))

    async def get_acks(self, run_id: uuid.UUID | str) -> list[DomainAck]:
        """See :meth:`AuditStore.get_acks`."""
        call = (await self._opened_core()).read_acks(run_id)
        return core.parse_acks(await self.execute(call))

    async def load_from_redis(self, run_id: uuid.UUID | str) -> bool:
        """See :meth:`AuditStore.load_from_redis`."""
        call = (await self._opened_core()).run_exists(run_id)
        return bool((await self.execute(call))[0])

    async def get_pending_run_ids(
        self, *, due_before: datetime | int | None = None, limit: int | None = None
    ) -> list[str]:
        """See :meth:`AuditStore.get_pending_run_ids`."""
        call = (await self._opened_core()).pending_run_ids(due_before, limit)
        return core.parse_run_ids(await self.execute(call), limit)

    async def server_time_ms(self) -> int:
        """See :meth:`AuditStore.server_time_ms`."""
        call = (await self._opened_core()).server_time("server_time_ms")
        return core.parse_server_time(await self.execute(call))

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

    # -- audited actions ----------------------------------------------------------------
    def audited(
        self, run_id: uuid.UUID | str, domain: str, action: str, *, result_id: str | None = None
    ) -> AsyncAudited:
        """``async with store.audited(run, domain, action) as act:``: acks the block's outcome,
        also when the task is cancelled (a failure, ``"CancelledError: ..."``); see
        :meth:`rac_store.store.AuditStore.audited` and :mod:`rac_store.aio.audited`."""
        return AsyncAudited(self, run_id, domain, action, result_id)

    def audit(self, domain: str, action: str, *, run_id_arg: str = "run_id") -> Callable[[F], F]:
        """A decorator for coroutine functions: each call is one :meth:`audited` block."""
        return audit_async(self, domain, action, run_id_arg)

    # -- I/O --------------------------------------------------------------------------
    async def _opened_core(self) -> StoreCore:
        """The core once the store is initialized: write calls carry the shards' epochs
        read then, and a read-only store adopts the recorded layout then."""
        await self.initialize()
        return self._core

    async def execute(self, call: Call) -> Any:
        """Send one call built by the sans-I/O core; the raw reply (a list for commands).

        The low-level hook :class:`~rac_store.aio.reconciler.AsyncAuditReconciler`
        uses: same retries and error mapping as every other method.
        """
        if not self._initialized:
            await self.initialize()
        return await self._sender.execute(call)
