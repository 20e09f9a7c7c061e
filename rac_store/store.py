"""AuditStore: the synchronous store, on Redis or on the embedded default."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import redis

from . import core
from .audited import Audited, F, audit_sync
from .cluster import is_cluster
from .connect import client_from_url
from .core import Call
from .embedded import create_embedded_client
from .errors import UnsupportedServerError
from .models import AckOutcome, AuditExpectation, AuditStatus, DomainAck
from .sending import Sender
from .server_checks import INFO_SECTIONS, info_denied
from .store_base import StoreBase, StoreOptions
from .wait_aof import WaitAof, as_wait_aof

if TYPE_CHECKING:
    from typing_extensions import Unpack


class AuditStore(StoreBase):
    """Expectations and acks of runs, kept in Redis by atomic Lua scripts.

    ``AuditStore.from_url(url, **options)`` makes one on the Redis at ``url`` (see
    :meth:`StoreBase.from_url <rac_store.store_base.StoreBase.from_url>`).

    With no ``redis_client`` the environment decides (see
    :mod:`rac_store.environment`): ``RAC_REDIS_URL`` connects to Redis, and
    otherwise, in ``AOS_MODE=local``, the same scripts run on an embedded
    in-process server. The options (``prefix``, ``ttl_seconds``, ``shards``, ``retry``,
    ``findings_maxlen``, ``metrics``, ``check_server``) are those of
    :class:`~rac_store.store_base.StoreOptions`.

    ``redis_client`` may be a ``redis.Redis``, a ``redis.cluster.RedisCluster``
    (every call touches one hash slot; see docs/cluster.md) or a fakeredis client.
    """

    OWN_OPTIONS: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"wait_aof": as_wait_aof}
    _client_from_url = staticmethod(client_from_url)

    def __init__(
        self,
        redis_client: Any = None,
        *,
        wait_aof: bool | WaitAof | None = None,
        **options: Unpack[StoreOptions],
    ) -> None:
        """Connect (or start the embedded server) and check the server and layout.

        ``options`` are those of :class:`~rac_store.store_base.StoreOptions`.
        ``wait_aof`` (``True`` or a :class:`WaitAof`) makes every write wait for
        the AOF with ``WAITAOF`` (Redis >= 7.2 with ``appendonly yes``).
        """
        super().__init__(
            redis_client, client_from_url, create_embedded_client, options, as_wait_aof(wait_aof)
        )
        if self._wait_aof is not None and is_cluster(self._client):
            raise UnsupportedServerError("wait_aof is not supported on a Redis Cluster")
        self._sender = Sender(
            self._client, self._scripts, self._retry, self._wait_aof, read_only=self._read_only
        )
        if self._check_server_at_start and not self._embedded:
            self._check_server()
        if self._usable_here:  # else the first call raises, where the store is used
            epochs = self._opened(self.execute(self._layout_call()))
            while epochs is not None:
                epochs = self._epochs_opened(epochs, self.execute(epochs))

    # -- writes -----------------------------------------------------------------------
    def add_expectations(
        self, run_id: uuid.UUID | str, expectations: Iterable[AuditExpectation]
    ) -> int:
        """Declare expectations; returns how many were new (re-adding is a no-op)."""
        return core.parse_count(self.execute(self._core.add_expectations(run_id, expectations)))

    def add_ack(self, run_id: uuid.UUID | str, ack: DomainAck) -> AckOutcome:
        """Record one ack: recorded, duplicate, drift or late (one EVALSHA)."""
        outcome = core.parse_outcome(self._sender.execute(self._core.add_ack(run_id, ack)))
        if self._metrics is not None:
            self._metrics.observe_acks((outcome,))
        return outcome

    def add_acks(self, run_id: uuid.UUID | str, acks: Iterable[DomainAck]) -> list[AckOutcome]:
        """Record many acks of one run in one call; one outcome per ack, in order."""
        outcomes = core.parse_outcomes(self.execute(self._core.add_acks(run_id, acks)))
        if self._metrics is not None:
            self._metrics.observe_acks(outcomes)
        return outcomes

    def update_expectation_status(
        self, run_id: uuid.UUID | str, domain: str, action: str, status: AuditStatus | str
    ) -> bool:
        """Move an expectation to ``status``; False when it does not exist.

        Raises InvalidTransitionError for a move the state machine forbids.
        """
        return bool(self.execute(self._core.update_status(run_id, domain, action, status)))

    def clear_run(self, run_id: uuid.UUID | str) -> bool:
        """Delete all data of a run; True when there was any."""
        return bool(self.execute(self._core.clear_run(run_id)))

    # -- reads ------------------------------------------------------------------------
    def get_expectations(self, run_id: uuid.UUID | str) -> list[AuditExpectation]:
        """The run's expectations with their current status."""
        return core.parse_expectations(self.execute(self._core.read_expectations(run_id)))

    def get_acks(self, run_id: uuid.UUID | str) -> list[DomainAck]:
        """The run's acks in arrival order (duplicates excluded)."""
        return core.parse_acks(self.execute(self._core.read_acks(run_id)))

    def load_from_redis(self, run_id: uuid.UUID | str) -> bool:
        """True when the store holds any data of the run."""
        return bool(self.execute(self._core.run_exists(run_id))[0])

    def get_pending_run_ids(
        self, *, due_before: datetime | int | None = None, limit: int | None = None
    ) -> list[str]:
        """Runs with a PENDING expectation, earliest due first, from every shard.

        ``due_before`` (aware datetime or epoch ms, server clock) keeps only runs
        whose earliest deadline is at or before it.
        """
        call = self._core.pending_run_ids(due_before, limit)
        return core.parse_run_ids(self.execute(call), limit)

    def server_time_ms(self) -> int:
        """The server's clock in epoch milliseconds (the clock deadlines use)."""
        return core.parse_server_time(self.execute(self._core.server_time("server_time_ms")))

    # -- I/O --------------------------------------------------------------------------
    def _check_server(self) -> None:
        """Run the start-up checks on ``INFO``; warn or raise (see server_checks)."""

        def read_info() -> Any:
            try:
                return self._client.info(*INFO_SECTIONS)
            except redis.exceptions.NoPermissionError as exc:
                raise info_denied(exc) from exc

        self._apply_server_checks(self._sender.retrying("start-up checks", read_info))

    def execute(self, call: Call) -> Any:
        """Send one call built by the sans-I/O core; the raw reply (a list for commands).

        The low-level hook the reconciler uses: same retries and error mapping as
        every other method.
        """
        return self._sender.execute(call)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    # -- audited actions ----------------------------------------------------------------
    def audited(
        self, run_id: uuid.UUID | str, domain: str, action: str, *, result_id: str | None = None
    ) -> Audited:
        """``with store.audited(run, domain, action) as act:``: acks the block's outcome.

        Success when it ends (with ``act.result_id``), a failure
        ``"<ExceptionType>: <message>"`` when it raises (re-raised), a rollback after
        ``act.rollback(reason)``. See :mod:`rac_store.audited`.
        """
        return Audited(self, run_id, domain, action, result_id)

    def audit(self, domain: str, action: str, *, run_id_arg: str = "run_id") -> Callable[[F], F]:
        """A decorator: each call of the function is one :meth:`audited` block, for the
        run id its argument ``run_id_arg`` carries (see ``rac_store.audited.current_action``)."""
        return audit_sync(self, domain, action, run_id_arg)


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
    swap_audit_store(None)


def swap_audit_store(store: AuditStore | None) -> AuditStore | None:
    """Make ``store`` the process-wide store (None: forget it); returns the one it replaced.

    The pytest plugin (:mod:`rac_store.testing`) installs its fixture's store this way.
    """
    global _store
    with _store_lock:
        previous, _store = _store, store
        return previous
