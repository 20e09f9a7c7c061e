"""What the sync and the asyncio store share: construction from options, and properties.

Only the I/O differs between :class:`~rac_store.store.AuditStore` and
:class:`~rac_store.aio.store.AsyncAuditStore`; each passes its own client
factories (sync or asyncio) and sends with its own sender
(:mod:`rac_store.sending`, :mod:`rac_store.aio.sending`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypedDict

from . import process_guard
from .core import DEFAULT_FINDINGS_MAXLEN, Call, StoreCore
from .embedded import EmbeddedServer, default_server, is_embedded
from .environment import StoreDurabilityMode, aos_mode, choose_client
from .errors import UnsupportedServerError
from .keys import KeySpace
from .metrics import MetricsOption, resolve_metrics
from .retry import RetryPolicy
from .scripts import load_scripts
from .server_checks import EvictionPolicyWarning, ServerFacts, check_server
from .wait_aof import WaitAof

_log = logging.getLogger("rac_store")

DEFAULT_SHARDS = 16


class StoreOptions(TypedDict, total=False):
    """The options of every store, sync and asyncio (``AuditStore(client, **options)``).

    ``prefix`` (``"rac"``) names the store's keys; ``ttl_seconds`` (3600) is how long a
    run's keys live after its last write; ``shards`` (16, a power of two) spreads runs
    over hash tags; ``retry`` (:class:`~rac_store.retry.RetryPolicy`) bounds re-sends;
    ``findings_maxlen`` (10,000) bounds each shard's findings stream; ``metrics``
    counts acks (:mod:`rac_store.metrics`; ``False`` for none); ``check_server`` (True)
    runs the start-up checks of :mod:`rac_store.server_checks`.

    ``read_only`` (False) opens an existing store for reading only: nothing is ever
    written (a write raises :class:`~rac_store.errors.ReadOnlyStoreError` before
    anything is sent), the layout is read rather than recorded
    (:class:`~rac_store.errors.StoreNotFoundError` when there is no store under the
    prefix), and ``shards``, when not given, is the count the store recorded.
    """

    prefix: str
    ttl_seconds: int
    shards: int
    retry: RetryPolicy | None
    findings_maxlen: int
    metrics: MetricsOption
    check_server: bool
    read_only: bool


@dataclass(frozen=True)
class StoreSettings:
    """:class:`StoreOptions` with their defaults filled in."""

    prefix: str = "rac"
    ttl_seconds: int = 3600
    shards: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    findings_maxlen: int = DEFAULT_FINDINGS_MAXLEN
    metrics: MetricsOption = None
    check_server: bool = True
    read_only: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> StoreSettings:
        """The settings of ``options``; TypeError names an option no store takes."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unexpected store option(s): {', '.join(unknown)}")
        given = {name: value for name, value in options.items() if value is not None}
        return cls(**given)


class StoreBase:
    """Client, durability mode, sans-I/O core, retry policy, scripts and metrics of one store."""

    def __init__(
        self,
        redis_client: Any,
        connect: Callable[[str], Any],
        embedded: Callable[[EmbeddedServer], Any],
        options: StoreOptions,
        wait_aof: WaitAof | None = None,
    ) -> None:
        settings = StoreSettings.from_options(options)
        self._core = StoreCore(
            KeySpace(
                settings.prefix, DEFAULT_SHARDS if settings.shards is None else settings.shards
            ),
            settings.ttl_seconds,
            settings.findings_maxlen,
        )
        self._shards_given = settings.shards is not None
        self._read_only = settings.read_only
        self._retry = settings.retry
        self._check_server_at_start = settings.check_server
        self._usable_here = True
        self._client, self._mode = choose_client(
            redis_client, connect, lambda: embedded(self._default_server())
        )
        self._embedded = is_embedded(self._client)
        if self._embedded and wait_aof is not None:
            raise UnsupportedServerError("wait_aof needs a Redis server with an AOF")
        self._wait_aof = wait_aof
        self._metrics = resolve_metrics(settings.metrics)
        self._scripts = load_scripts(self._embedded)

    def _default_server(self) -> EmbeddedServer:
        server = default_server()
        self._usable_here = server.usable_here
        return server

    def __getstate__(self) -> dict[str, Any]:
        """A store on a Redis pickles as before; an embedded one refuses (its data stays here)."""
        if self._embedded:
            raise process_guard.refuse_pickling(f"this embedded {type(self).__name__}")
        return self.__dict__

    def _apply_server_checks(self, info: Mapping[str, Any]) -> None:
        """Refuse the server or warn about it, from its ``INFO`` reply (see server_checks).

        The caller reads ``INFO`` (sync or awaited); the embedded server has none,
        so stores skip this there.
        """
        facts = ServerFacts.from_info(info)
        for message in check_server(facts, aos_mode=aos_mode(), wait_aof=self._wait_aof):
            _log.warning("%s", message)
            warnings.warn(message, EvictionPolicyWarning, stacklevel=4)

    def _layout_call(self) -> Call:
        """The start-up call: record (or check) the layout, or only read it when read-only."""
        return self._core.read_meta() if self._read_only else self._core.init_meta()

    def _opened(self, reply: Any) -> None:
        """Take in the reply of :meth:`_layout_call` (a read-only store adopts the layout)."""
        if self._read_only:
            self._core = self._core.adopt_layout(reply, self._shards_given)

    @property
    def read_only(self) -> bool:
        """True for a store opened with ``read_only=True``."""
        return self._read_only

    @property
    def durability_mode(self) -> StoreDurabilityMode:
        """MEMORY (embedded, in-process) or REDIS."""
        return self._mode

    @property
    def is_durable(self) -> bool:
        """True when the data lives in a Redis server."""
        return self._mode is StoreDurabilityMode.REDIS

    @property
    def client(self) -> Any:
        """The Redis client the store uses (the embedded one in MEMORY mode)."""
        return self._client

    @property
    def core(self) -> StoreCore:
        """The sans-I/O core: key space, TTL and call builders."""
        return self._core
