"""Fault injection and server-side figures for the reliability tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis.cluster import RedisCluster

from .snapshot import snapshot


@contextmanager
def stalled(admin: redis.Redis, how: str, seconds: float) -> Iterator[None]:
    """Stall the whole server for ``seconds`` while the body runs.

    ``"sleep"``: ``DEBUG SLEEP`` blocks the server; requests sent meanwhile are
    queued in the kernel and *run when it wakes*, after a client with a shorter
    timeout gave up (the reply is lost). ``"pause"``: ``CLIENT PAUSE ALL`` holds
    every client's commands; a client that gives up meanwhile is dropped and its
    command *never runs*. Either way the caller sees a timeout.
    """
    if how == "pause":
        admin.client_pause(int(seconds * 1000), all=True)
        yield
        time.sleep(seconds)
        return
    if how != "sleep":
        raise ValueError(how)
    sleeper = threading.Thread(
        target=admin.execute_command, args=("DEBUG", "SLEEP", str(seconds)), daemon=True
    )
    sleeper.start()
    time.sleep(min(0.02, seconds / 4))  # let DEBUG SLEEP reach the server first
    try:
        yield
    finally:
        sleeper.join()


def command_stats(client: redis.Redis) -> dict[str, dict[str, Any]]:
    """``INFO commandstats`` keyed by command name (``evalsha``, ``script|flush``)."""
    return {
        name.removeprefix("cmdstat_"): stats for name, stats in client.info("commandstats").items()
    }


def script_executions(client: redis.Redis) -> int:
    """How many scripts the server ran to the end: EVALSHA and EVAL calls, minus those
    refused (``rejected_calls``) or answered with an error such as NOSCRIPT (``failed_calls``)."""
    stats = command_stats(client)
    return sum(
        int(seen.get("calls", 0))
        - int(seen.get("rejected_calls", 0))
        - int(seen.get("failed_calls", 0))
        for seen in (stats.get("evalsha", {}), stats.get("eval", {}))
    )


def connections_received(client: redis.Redis) -> int:
    """``total_connections_received``: grows by one for every reconnect."""
    return int(client.info("stats")["total_connections_received"])


def digest(client: Any) -> str:
    """A fingerprint of the whole data set.

    ``DEBUG DIGEST`` on redis-server (of every primary, on a Redis Cluster); on
    the embedded server (no DEBUG) every key's type and content
    (tests/support/snapshot.py).
    """
    if isinstance(client, RedisCluster):
        digests = client.execute_command("DEBUG", "DIGEST", target_nodes=RedisCluster.PRIMARIES)
        return repr(sorted(digests.items()))
    try:
        return str(client.execute_command("DEBUG", "DIGEST"))
    except redis.ResponseError:
        return repr(sorted(snapshot(client).items()))
