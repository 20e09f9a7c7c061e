"""Read a whole (small) server's data, to prove that a call changed nothing."""

from __future__ import annotations

from typing import Any

Snapshot = dict[bytes, tuple[bytes, Any]]


def _value(client: Any, key: bytes, kind: bytes) -> Any:
    if kind == b"string":
        return client.get(key)
    if kind == b"hash":
        return client.hgetall(key)
    if kind == b"list":
        return client.lrange(key, 0, -1)
    if kind == b"set":
        return sorted(client.smembers(key))
    if kind == b"zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == b"stream":
        return client.xrange(key)
    raise AssertionError(f"unexpected key type {kind!r} of {key!r}")


def snapshot(client: Any) -> Snapshot:
    """Every key of the server with its type and value."""
    state: Snapshot = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        state[key] = (kind, _value(client, key, kind))
    return state


def keys_with(client: Any, text: str) -> list[bytes]:
    """Every key whose name contains ``text``."""
    return sorted(k for k in client.scan_iter(count=1000) if text.encode() in k)
