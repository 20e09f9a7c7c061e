"""Start-up checks of the Redis server a store connects to (sans-I/O).

A store reads ``INFO server memory persistence`` once (one round trip, allowed
to a least-privilege user that has ``+info``; ``CONFIG GET`` is not needed) and
hands the parsed reply to :func:`check_server`, which

* refuses servers older than Redis 7 (the scripts' ``#!lua`` flags need 7.0),
* warns (:class:`EvictionPolicyWarning`) when ``maxmemory-policy`` may evict the
  store's keys, and refuses that in ``AOS_MODE=prod``,
* warns (:class:`PersistenceWarning`) when it cannot confirm that the server keeps
  its data across a restart (no AOF), and refuses that in ``AOS_MODE=prod`` unless
  allowed (``allow_no_persistence=True`` or ``RAC_ALLOW_NO_PERSISTENCE=true``),
* refuses ``wait_aof`` where the server has no ``WAITAOF`` (Redis < 7.2) or no AOF.

Nothing here talks to Redis, so the sync and asyncio stores share it. The
embedded backend (fakeredis) has no ``INFO``; stores skip these checks there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import StorePermissionError, UnsupportedServerError
from .wait_aof import WaitAof

INFO_SECTIONS = ("server", "memory", "persistence")
"""The ``INFO`` sections the checks read (one ``INFO`` call, Redis >= 7 takes several)."""

MIN_VERSION = (7, 0, 0)
"""Oldest Redis the store runs on."""
WAITAOF_VERSION = (7, 2, 0)
"""First Redis with ``WAITAOF``."""
SAFE_POLICY = "noeviction"
"""The only ``maxmemory-policy`` that never evicts the store's keys."""


class EvictionPolicyWarning(UserWarning):
    """The server may evict keys (and so silently drop expectations or acks) when full."""


class PersistenceWarning(UserWarning):
    """The server may lose its data on a restart (no AOF): acks reported RECORDED can vanish.

    Only an AOF (``appendonly yes``) is taken as persistence: ``INFO`` shows it, while
    the RDB ``save`` schedule needs ``CONFIG GET``, which a least-privilege user lacks
    — and an RDB restore brings back an older state without a word anyway
    (docs/reliability.md).
    """


ALLOW_NO_PERSISTENCE_ENV = "RAC_ALLOW_NO_PERSISTENCE"
"""Set to true to let stores start in AOS_MODE=prod on a server without an AOF."""


@dataclass(frozen=True)
class ServerFacts:
    """What the checks need to know about a server, read from ``INFO``."""

    version: tuple[int, ...]
    maxmemory_policy: str
    maxmemory: int
    aof_enabled: bool
    server_name: str = "redis"

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> ServerFacts:
        """Facts from a parsed ``INFO`` reply (redis-py's dict)."""
        return cls(
            version=parse_version(str(info.get("redis_version", "0"))),
            maxmemory_policy=str(info.get("maxmemory_policy", "unknown")),
            maxmemory=int(info.get("maxmemory", 0) or 0),
            aof_enabled=str(info.get("aof_enabled", "0")) == "1",
            server_name=str(info.get("server_name", "redis")),
        )

    @property
    def version_text(self) -> str:
        """The version as ``major.minor.patch``."""
        return ".".join(str(part) for part in self.version)


def parse_version(text: str) -> tuple[int, ...]:
    """``"7.0.15"`` -> ``(7, 0, 15)``; each part's leading digits, 0 when there are none."""
    parts = []
    for piece in text.strip().split(".")[:3]:
        digits = re.match(r"\d*", piece)
        parts.append(int(digits.group()) if digits and digits.group() else 0)
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def check_server(
    facts: ServerFacts,
    *,
    aos_mode: str,
    wait_aof: WaitAof | None,
    allow_no_persistence: bool = False,
) -> list[UserWarning]:
    """Refuse an unfit server; return the warnings to give about a usable one.

    Raises UnsupportedServerError for Redis < 7, for an evicting
    ``maxmemory-policy`` in ``AOS_MODE=prod``, for a server without an AOF in
    ``AOS_MODE=prod`` unless ``allow_no_persistence``, and for ``wait_aof`` on a
    server without ``WAITAOF`` or without ``appendonly yes``. A server without an
    AOF that is allowed gives no warning (the operator chose it).
    """
    if facts.version < MIN_VERSION:
        raise UnsupportedServerError(
            f"Redis {facts.version_text} is too old: rac_store needs Redis >= 7.0"
        )
    warnings: list[UserWarning] = []
    if facts.maxmemory_policy != SAFE_POLICY:
        message = (
            f"maxmemory-policy is {facts.maxmemory_policy!r} (maxmemory={facts.maxmemory}):"
            " when the server is full it may evict the store's keys, silently losing"
            " expectations and acks; set maxmemory-policy noeviction"
        )
        if aos_mode == "prod":
            raise UnsupportedServerError(f"refused in AOS_MODE=prod: {message}")
        warnings.append(EvictionPolicyWarning(message))
    if not facts.aof_enabled and not allow_no_persistence:
        message = (
            "the server has no AOF (appendonly no): a restart loses every ack and expectation"
            " since the last RDB snapshot, if it takes any (the store then raises"
            " StoreResetError for writes rather than record acks against nothing); set"
            " appendonly yes, or pass allow_no_persistence=True"
            f" ({ALLOW_NO_PERSISTENCE_ENV}=true) to accept it"
        )
        if aos_mode == "prod":
            raise UnsupportedServerError(f"refused in AOS_MODE=prod: {message}")
        warnings.append(PersistenceWarning(message))
    if wait_aof is not None:
        if facts.version < WAITAOF_VERSION:
            raise UnsupportedServerError(
                f"wait_aof needs WAITAOF (Redis >= 7.2); the server is"
                f" {facts.server_name} {facts.version_text}"
            )
        if wait_aof.local and not facts.aof_enabled:
            raise UnsupportedServerError(
                "wait_aof needs the server's AOF: set appendonly yes (and appendfsync)"
            )
    return warnings


def info_denied(exc: Exception) -> StorePermissionError:
    """The error for a Redis user that may not run ``INFO``."""
    return StorePermissionError(
        f"start-up checks: this Redis user may not run INFO ({exc}); grant it '+info'"
        " (see docs/security.md), or pass check_server=False to skip the checks"
    )
