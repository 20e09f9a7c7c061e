"""The embedded backend: an in-process fakeredis server that runs the same Lua (via lupa)."""

from __future__ import annotations

from typing import Any

import fakeredis
import redis


def create_embedded_client() -> redis.Redis:
    """A client of a new, private in-process server."""
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 0)))


def create_embedded_async_client() -> Any:
    """An asyncio client of a new, private in-process server."""
    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(version=(7, 0)))


def is_embedded(client: object) -> bool:
    """True for a fakeredis client (which cannot read a ``#!lua`` first line)."""
    return type(client).__module__.startswith("fakeredis")
