"""Least-privilege Redis ACL rules for the store's two kinds of user.

* **worker**: writes expectations and acks (every store method), on the
  store's keys only (``~<prefix>:*``), no Pub/Sub channels, and only the
  commands the store and its scripts send. No ``FLUSHALL``, ``CONFIG``,
  ``KEYS``, ``SCRIPT FLUSH``, ``DEBUG`` or any other admin command.
* **inspector**: reads runs (``get_expectations``, ``get_acks``,
  ``get_pending_run_ids``, ...) and cannot write: it is granted no write
  command at all. Redis checks each command a script runs against the user
  that called the script, so a script run by the inspector cannot write either.

* **alerting**: consumes the findings streams with consumer groups
  (``AuditReconciler.consumer``, ``rac-store notify``): only the shards' findings
  and dead-letter streams (``~<prefix>:{*}:findings*``) and ``<prefix>:meta``
  (the layout check); no access to run data at all.

``rac-store acl`` (:mod:`rac_store.cli.acl`) prints the ``ACL SETUSER`` lines;
docs/security.md explains them.
"""

from __future__ import annotations

from collections.abc import Sequence

CONNECTION = ("ping", "hello", "info", "time")
"""Login checks and the start-up checks (INFO) and ``server_time_ms`` (TIME)."""
SCRIPTING = ("evalsha", "eval", "script|load")
"""Run the store's scripts; reload them after the cache was emptied."""
READS = (
    "lrange", "llen", "exists", "zrangebyscore", "zrange", "zscore", "zcard", "zcount",
    "hget", "hmget", "hgetall", "hexists", "hkeys", "hlen", "pttl", "xrevrange", "xread",
)  # fmt: skip
"""What the store and the reconciler read, directly or inside scripts (``xread`` for
``iter_findings`` / ``rac-store watch``; ``pttl``: add_acks refreshes TTLs when low;
``zcount``: the counts of overdue runs on ``rac-store web``)."""
WRITES = ("hset", "hsetnx", "hincrby", "rpush", "zadd", "zrem", "zpopmin", "pexpire", "del", "xadd")
"""What the write scripts run (``xadd`` appends to the findings stream, trimming it)."""
WAITAOF = ("waitaof",)
"""Only for stores made with ``wait_aof`` (Redis >= 7.2: older servers reject the name)."""


def _rules(
    prefixes: Sequence[str], commands: Sequence[str], keys: Sequence[str] = ("~P:*",)
) -> list[str]:
    """``keys``: key patterns, ``P`` standing for each prefix."""
    if any(not p or any(c in p for c in "*?[]\\ ") for p in prefixes):
        raise ValueError(f"prefixes must be plain words: {prefixes!r}")
    return [
        "resetkeys",
        *(key.replace("P", prefix, 1) for prefix in prefixes or ("rac",) for key in keys),
        "resetchannels",
        "-@all",
        *(f"+{command}" for command in commands),
    ]


def worker_rules(*prefixes: str, wait_aof: bool = False) -> list[str]:
    """ACL rules of a worker: every store method, on the keys of the stores
    with these prefixes (default ``rac``) only."""
    commands = [*CONNECTION, *SCRIPTING, *READS, *WRITES, *(WAITAOF if wait_aof else ())]
    return _rules(prefixes, commands)


def inspector_rules(*prefixes: str) -> list[str]:
    """ACL rules of a read-only inspector: the store's reads, no write command at all."""
    return _rules(prefixes, [*CONNECTION, *SCRIPTING, *READS])


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
    keys = ("~P:{*}:findings*", "~P:meta")
    return _rules(prefixes, [*CONNECTION, *SCRIPTING, *GROUPS], keys)
