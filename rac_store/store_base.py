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
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from . import process_guard
from .core import DEFAULT_FINDINGS_MAXLEN, Call, CommandCall, StoreCore
from .embedded import EmbeddedServer, default_server, is_embedded
from .environment import StoreDurabilityMode, aos_mode, choose_client, env_flag
from .errors import InvalidInputError, UnsupportedServerError
from .keys import KeySpace, check_prefix, check_shards
from .metrics import MetricsOption, resolve_metrics
from .retry import RetryPolicy
from .scripts import load_scripts
from .server_checks import ALLOW_NO_PERSISTENCE_ENV, ServerFacts, check_server
from .validation import MAX_FINDINGS_MAXLEN, MAX_TTL_SECONDS, bounded_int
from .wait_aof import WaitAof

if TYPE_CHECKING:
    from typing_extensions import Self

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

    ``allow_no_persistence`` (False) lets a store start in ``AOS_MODE=prod`` on a
    server whose persistence the start-up checks cannot confirm (no AOF), without a
    warning; the environment variable ``RAC_ALLOW_NO_PERSISTENCE=true`` does the same
    for stores made without options (``get_audit_store()``). A ``read_only`` store
    never warns about persistence (it writes nothing to lose). See docs/reliability.md.

    Every option is checked when the store is made, before any connection
    (:class:`~rac_store.errors.InvalidInputError`; an unknown option is a TypeError):
    ``ttl_seconds`` an int in 1..31,536,000 (a year), ``findings_maxlen`` an int in
    1..10,000,000, ``shards`` a power of two in 1..16384, ``prefix`` a word without
    braces, ``|``, whitespace or glob characters, ``retry`` a RetryPolicy (whose own
    fields are checked when it is made), the flags bools.

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
    allow_no_persistence: bool


@dataclass(frozen=True)
class StoreSettings:
    """:class:`StoreOptions` with their defaults filled in, each checked (InvalidInputError)."""

    prefix: str = "rac"
    ttl_seconds: int = 3600
    shards: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    findings_maxlen: int = DEFAULT_FINDINGS_MAXLEN
    metrics: MetricsOption = None
    check_server: bool = True
    read_only: bool = False
    allow_no_persistence: bool = False

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        bounded_int(self.ttl_seconds, "ttl_seconds", 1, MAX_TTL_SECONDS)
        if self.shards is not None:
            check_shards(self.shards)
        if not isinstance(self.retry, RetryPolicy):
            raise InvalidInputError(f"retry must be a RetryPolicy, got {self.retry!r:.80}")
        bounded_int(self.findings_maxlen, "findings_maxlen", 1, MAX_FINDINGS_MAXLEN)
        for flag in ("check_server", "read_only", "allow_no_persistence"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInputError(f"{flag} must be a bool: {getattr(self, flag)!r:.80}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> StoreSettings:
        """The settings of ``options``; TypeError names an option no store takes."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unexpected store option(s): {', '.join(unknown)}")
        given = {name: value for name, value in options.items() if value is not None}
        return cls(**given)

    @classmethod
    def check(cls, options: Mapping[str, Any], own: Mapping[str, Callable[[Any], object]]) -> None:
        """Check ``options`` before a client is made (``from_url``): the store options,
        and the store class's own keywords, each with its check in ``own``."""
        cls.from_options({name: v for name, v in options.items() if name not in own})
        for name, check in own.items():
            if name in options:
                check(options[name])


class StoreBase:
    """Client, durability mode, sans-I/O core, retry policy, scripts and metrics of one store."""

    OWN_OPTIONS: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}
    """The options a store takes beyond :class:`StoreOptions`, each with its check."""

    @staticmethod
    def _client_from_url(url: str, **options: Any) -> Any:
        """The client of a URL for this kind of store (sync or asyncio)."""
        raise NotImplementedError

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool | None = None,
        client_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Self:
        """A store on the Redis at ``url`` (``redis://``, ``rediss://``, ``unix://``).

        A Redis Cluster is named by ``redis+cluster://`` / ``rediss+cluster://``, or by
        ``cluster=True`` with a plain URL (see :mod:`rac_store.cluster.urls`).
        ``client_options`` go to redis-py's ``from_url`` (e.g. ``ssl_ca_certs``,
        ``socket_timeout``, ``username``; the defaults of
        :func:`rac_store.connect.client_from_url` apply otherwise); ``options`` go to the
        store and are checked before the client is made.
        """
        StoreSettings.check(options, cls.OWN_OPTIONS)
        client = cls._client_from_url(url, cluster=cluster, **(client_options or {}))
        return cls(client, **options)

    def __init__(
        self,
        redis_client: Any,
        connect: Callable[[str], Any],
        embedded: Callable[[EmbeddedServer], Any],
        options: StoreOptions,
        wait_aof: WaitAof | None = None,
    ) -> None:
        settings = StoreSettings.from_options(options)  # every option checked, nothing made yet
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
        self._allow_no_persistence = settings.allow_no_persistence
        self._metrics = resolve_metrics(settings.metrics)
        self._usable_here = True
        self._client, self._mode = choose_client(
            redis_client, connect, lambda: embedded(self._default_server())
        )
        self._embedded = is_embedded(self._client)
        if self._embedded and wait_aof is not None:
            raise UnsupportedServerError("wait_aof needs a Redis server with an AOF")
        self._wait_aof = wait_aof
        self._scripts = load_scripts(self._embedded)

    def _default_server(self) -> EmbeddedServer:
        server = default_server()
        self._usable_here = server.usable_here
        return server

    def __getstate__(self) -> dict[str, Any]:
        """A store never pickles: an embedded one's data stays here, a client's sockets too."""
        name = type(self).__name__
        if self._embedded:
            raise process_guard.refuse_pickling(f"this embedded {name}")
        raise TypeError(
            f"a {name} cannot be pickled: its connections belong to this process;"
            f" open one in the other process with {name}.from_url(url)"
        )

    def _apply_server_checks(self, info: Mapping[str, Any]) -> None:
        """Refuse the server or warn about it, from its ``INFO`` reply (see server_checks).

        The caller reads ``INFO`` (sync or awaited); the embedded server has none,
        so stores skip this there.
        """
        facts = ServerFacts.from_info(info)
        # A read-only store writes nothing a restart could lose: the writers are warned.
        allow = (
            self._read_only
            or self._allow_no_persistence
            or env_flag(ALLOW_NO_PERSISTENCE_ENV, False)
        )
        found = check_server(
            facts, aos_mode=aos_mode(), wait_aof=self._wait_aof, allow_no_persistence=allow
        )
        for warning in found:
            _log.warning("%s", warning)
            warnings.warn(warning, stacklevel=4)

    def _layout_call(self) -> Call:
        """The start-up call: record (or check) the layout, or only read it when read-only."""
        return self._core.read_meta() if self._read_only else self._core.init_meta()

    def _opened(self, reply: Any) -> CommandCall | None:
        """Take in the reply of :meth:`_layout_call` (a read-only store adopts the layout);
        the call that opens the shards' epochs next, or None (a read-only store never
        writes, so it needs none)."""
        if self._read_only:
            self._core = self._core.adopt_layout(reply, self._shards_given)
            return None
        return self._core.open_epochs()

    def _epochs_opened(self, call: CommandCall, reply: Any) -> CommandCall | None:
        """Take in the reply of an epochs call; the next one to send, or None when done."""
        return self._core.adopt_epochs(call, reply)

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
