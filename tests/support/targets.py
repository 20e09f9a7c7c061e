"""What a test that talks to a real server directly gets from the ``server`` fixture."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis


@dataclass(frozen=True)
class ServerTarget:
    """A real server the test talks to directly: one node, or a whole cluster."""

    url: str
    """For ``AuditStore.from_url`` (in worker processes, the CLI)."""
    client: Any
    """A ``redis.Redis`` or ``RedisCluster`` client, the data emptied before the test."""
    primaries: list[Callable[[], redis.Redis]]
    """Makers of a plain client of each primary (MONITOR, per-node INFO)."""
