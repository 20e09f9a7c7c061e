"""Start-up checks of the Redis server a store connects to (sans-I/O).

A store reads ``INFO server memory persistence`` once (one round trip, allowed
to a least-privilege user that has ``+info``; ``CONFIG GET`` is not needed) and
hands the parsed reply to :func:`check_server`, which

* refuses servers older than Redis 7 (the scripts' ``#!lua`` flags need 7.0),
* warns (:class:`EvictionPolicyWarning`) when ``maxmemory-policy`` may evict the
  store's keys, and refuses that in ``AOS_MODE=prod``,
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


def check_server(facts: ServerFacts, *, aos_mode: str, wait_aof: WaitAof | None) -> list[str]:
    """Refuse an unfit server; return the warnings to give about a usable one.

    Raises UnsupportedServerError for Redis < 7, for an evicting
    ``maxmemory-policy`` in ``AOS_MODE=prod``, and for ``wait_aof`` on a server
    without ``WAITAOF`` or without ``appendonly yes``.
    """
    if facts.version < MIN_VERSION:
        raise UnsupportedServerError(
            f"Redis {facts.version_text} is too old: rac_store needs Redis >= 7.0"
        )
    warnings: list[str] = []
    if facts.maxmemory_policy != SAFE_POLICY:
        message = (
            f"maxmemory-policy is {facts.maxmemory_policy!r} (maxmemory={facts.maxmemory}):"
            " when the server is full it may evict the store's keys, silently losing"
            " expectations and acks; set maxmemory-policy noeviction"
        )
        if aos_mode == "prod":
            raise UnsupportedServerError(f"refused in AOS_MODE=prod: {message}")
        warnings.append(message)
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
