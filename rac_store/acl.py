"""Least-privilege Redis ACL rules for the store's two kinds of user.

* **worker**: writes expectations and acks (every store method), on the
  store's keys only, no Pub/Sub channels, and only the commands the store and
  its scripts send. No ``FLUSHALL``, ``CONFIG``,
  ``KEYS``, ``SCRIPT FLUSH``, ``DEBUG`` or any other admin command.
* **inspector**: reads runs (``get_expectations``, ``get_acks``,
  ``get_pending_run_ids``, ...) and cannot write: it is granted no write
  command at all. Redis checks each command a script runs against the user
  that called the script, so a script run by the inspector cannot write either.

* **alerting**: consumes the findings streams with consumer groups
  (``AuditReconciler.consumer``, ``rac-store notify``): only the shards' findings
  and dead-letter streams (``~<prefix>:{*}:findings*``), their store epochs and
  ``<prefix>:meta`` (the layout check); no access to run data at all.

Key patterns are exact: a store's keys are ``<prefix>:meta`` and
``<prefix>:{<shard>}:...``, so the rules grant ``~<prefix>:meta`` and
``~<prefix>:{*}:*`` — not ``~<prefix>:*``, which would also cover the store
with prefix ``<prefix>:tenant`` (its keys are ``<prefix>:tenant:{<shard>}:...``).
Prefixes hold no glob character (:func:`rac_store.keys.check_prefix`), so each
pattern matches its own store's keys and no other's.

``rac-store acl`` (:mod:`rac_store.cli.acl`) prints the ``ACL SETUSER`` lines;
docs/security.md explains them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .keys import check_prefix

CONNECTION = ("ping", "hello", "info", "time")
"""Login checks and the start-up checks (INFO) and ``server_time_ms`` (TIME)."""
SCRIPTING = ("evalsha", "eval", "script|load")
"""Run the store's scripts; reload them after the cache was emptied. ``eval`` and
``script|load`` also let a user run Lua of its own (held to the same ACL, but able to
keep the server busy: docs/security.md); without them (``allow_eval=False``) a user can
only ``evalsha`` scripts an admin loaded (:func:`rac_store.scripts.preload`)."""
READS = (
    "lrange", "llen", "exists", "zrangebyscore", "zrange", "zscore", "zcard", "zcount",
    "hget", "hmget", "hgetall", "hexists", "hkeys", "hlen", "pttl", "xrevrange", "xread",
    "get",
)  # fmt: skip
"""What the store and the reconciler read, directly or inside scripts (``xread`` for
``iter_findings`` / ``rac-store watch``; ``pttl``: add_acks refreshes TTLs when low;
``zcount``: the counts of overdue runs on ``rac-store web``; ``get``: the store epochs,
read at start-up and by every write script)."""
WRITES = ("hset", "hsetnx", "hincrby", "rpush", "zadd", "zrem", "zpopmin", "pexpire", "del", "xadd")
"""What the write scripts run (``xadd`` appends to the findings stream, trimming it)."""
EPOCHS = ("set",)
"""The store epochs (reset detection): made with ``SET NX GET`` by the first store that
opens on a server (read with ``GET`` at start-up and by every write script)."""
WAITAOF = ("waitaof",)
"""Only for stores made with ``wait_aof`` (Redis >= 7.2: older servers reject the name)."""


def key_patterns(prefix: str) -> list[str]:
    """The ACL key patterns that cover exactly the keys of the store with ``prefix``."""
    check_prefix(prefix)
    return [f"~{prefix}:meta", f"~{prefix}:{{*}}:*"]


def findings_patterns(prefix: str) -> list[str]:
    """The key patterns of an alerting user: the layout record, the findings and
    dead-letter streams and the store epochs of every shard; no run data."""
    check_prefix(prefix)
    return [f"~{prefix}:meta", f"~{prefix}:{{*}}:findings*", f"~{prefix}:{{*}}:epoch"]


def _rules(
    prefixes: Sequence[str],
    commands: Sequence[str],
    patterns: Callable[[str], list[str]] = key_patterns,
) -> list[str]:
    return [
        "resetkeys",
        *(pattern for prefix in prefixes or ("rac",) for pattern in patterns(prefix)),
        "resetchannels",
        "-@all",
        *(f"+{command}" for command in commands),
    ]


def _scripting(allow_eval: bool) -> tuple[str, ...]:
    return SCRIPTING if allow_eval else ("evalsha",)


def worker_rules(*prefixes: str, wait_aof: bool = False, allow_eval: bool = True) -> list[str]:
    """ACL rules of a worker: every store method, on the keys of the stores
    with these prefixes (default ``rac``) only. ``allow_eval=False``: no Lua of its own,
    only the store's scripts once an admin preloaded them (docs/security.md)."""
    commands = [*CONNECTION, *_scripting(allow_eval), *READS, *WRITES, *EPOCHS]
    return _rules(prefixes, [*commands, *(WAITAOF if wait_aof else ())])


def inspector_rules(*prefixes: str, allow_eval: bool = True) -> list[str]:
    """ACL rules of a read-only inspector: the store's reads, no write command at all."""
    return _rules(prefixes, [*CONNECTION, *_scripting(allow_eval), *READS])


def setuser_line(user: str, rules: Sequence[str], password: str = "<password>") -> str:
    """An ``ACL SETUSER`` command line (for redis-cli or an ACL file with ``user``)."""
    return " ".join(["ACL", "SETUSER", user, "on", f">{password}", *rules])


GROUPS = (
    "exists", "hmget", "hget", "xread", "xrevrange", "xinfo|stream", "xinfo|groups",
    "xgroup|create", "xgroup|setid", "xreadgroup", "xack", "xautoclaim", "xpending", "xadd",
)  # fmt: skip
"""What a findings consumer sends and its scripts run (``read_group.lua``,
``dead_letter.lua``): ``hmget`` for the store's layout check, ``xadd`` for dead letters."""


def alerting_rules(*prefixes: str) -> list[str]:
    """ACL rules of an alerting consumer: consumer groups on the findings streams only."""
    # P:meta: the store's start-up check runs init_meta.lua, and Redis checks a write
    # script's declared keys for write access; the user has no hash write command.
    # The epochs: a store reads them when it opens (and makes the missing ones).
    commands = [*CONNECTION, *SCRIPTING, *GROUPS, "get", *EPOCHS]
    return _rules(prefixes, commands, findings_patterns)
