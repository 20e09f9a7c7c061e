"""What the sync and the asyncio store share: construction from options, and properties.

Only the I/O differs between :class:`~rac_store.store.AuditStore` and
:class:`~rac_store.async_store.AsyncAuditStore`; each passes its own client
factories (sync or asyncio) and keeps its own way of sending.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from .core import DEFAULT_FINDINGS_MAXLEN, RetryPolicy, StoreCore
from .durability import StoreDurabilityMode, aos_mode, choose_client
from .embedded import is_embedded
from .errors import UnsupportedServerError
from .keys import KeySpace
from .metrics import MetricsOption, resolve_metrics
from .scripts import register_scripts
from .server_checks import EvictionPolicyWarning, ServerFacts, check_server
from .wait_aof import WaitAof

_log = logging.getLogger("rac_store")


class StoreBase:
    """Client, durability mode, sans-I/O core, retry policy, scripts and metrics of one store.

    ``findings_maxlen`` bounds each shard's findings stream; ``metrics`` counts
    acks (see :mod:`rac_store.metrics`; ``False`` for none).
    """

    def __init__(
        self,
        redis_client: Any,
        connect: Callable[[str], Any],
        embedded: Callable[[], Any],
        *,
        prefix: str,
        ttl_seconds: int,
        shards: int,
        retry: RetryPolicy | None,
        findings_maxlen: int = DEFAULT_FINDINGS_MAXLEN,
        metrics: MetricsOption = None,
        wait_aof: WaitAof | None = None,
    ) -> None:
        self._client, self._mode = choose_client(redis_client, connect, embedded)
        self._embedded = is_embedded(self._client)
        if self._embedded and wait_aof is not None:
            raise UnsupportedServerError("wait_aof needs a Redis server with an AOF")
        self._wait_aof = wait_aof
        self._core = StoreCore(KeySpace(prefix, shards), ttl_seconds, findings_maxlen)
        self._metrics = resolve_metrics(metrics)
        self._retry = retry or RetryPolicy()
        self._scripts: dict[str, Any] = register_scripts(self._client)

    def _apply_server_checks(self, info: Mapping[str, Any]) -> None:
        """Refuse the server or warn about it, from its ``INFO`` reply (see server_checks).

        The caller reads ``INFO`` (sync or awaited); the embedded server has none,
        so stores skip this there.
        """
        facts = ServerFacts.from_info(info)
        for message in check_server(facts, aos_mode=aos_mode(), wait_aof=self._wait_aof):
            _log.warning("%s", message)
            warnings.warn(message, EvictionPolicyWarning, stacklevel=4)

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
