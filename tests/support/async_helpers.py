"""Helpers for asyncio tests: clients of the test's server, runs on a chosen shard."""

from __future__ import annotations

import uuid
import zlib
from typing import Any

import fakeredis
import redis.asyncio

from .redis_server import RedisServer


def async_client(server: RedisServer | fakeredis.FakeServer, **options: Any) -> Any:
    """A new asyncio client of a real server or of an embedded one (make it inside the loop)."""
    if isinstance(server, fakeredis.FakeServer):
        return fakeredis.FakeAsyncRedis(server=server, **options)
    return redis.asyncio.Redis(host="127.0.0.1", port=server.port, **options)


def sync_client(server: RedisServer | fakeredis.FakeServer) -> Any:
    """A new sync client of the same server."""
    if isinstance(server, fakeredis.FakeServer):
        return fakeredis.FakeRedis(server=server)
    return server.client()


def run_on_shard(shard: int, shards: int = 16) -> uuid.UUID:
    """A fresh run id whose keys live on ``shard``."""
    while True:
        run = uuid.uuid4()
        if zlib.crc32(str(run).encode()) % shards == shard:
            return run
