"""Every server the benchmarks start: redis-servers, local clusters, ``rac-store serve``.

They run on free loopback ports in temporary directories (never port 6379), with the
test suite's helpers (``tests/support``); a server somebody else runs is used only
when given as ``--redis-url``, and then never flushed.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator

from tests.support.cluster import LocalCluster
from tests.support.redis_server import RedisServer, running_redis


def redis_server() -> contextlib.AbstractContextManager[RedisServer]:
    """A new redis-server on a free loopback port, stopped and removed on exit."""
    return running_redis()


@contextlib.contextmanager
def local_cluster(replicas: int = 0, primaries: int = 3) -> Iterator[LocalCluster]:
    """A new local Redis Cluster, up and in sync, stopped and removed on exit."""
    cluster = LocalCluster(primaries=primaries, replicas=replicas).start()
    try:
        yield cluster
    finally:
        cluster.cleanup()


@contextlib.contextmanager
def served_embedded() -> Iterator[str]:
    """``rac-store serve`` on a free loopback port, in a process of its own; its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rac_store", "serve", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first:
            raise RuntimeError(f"rac-store serve exited with {process.wait()}")
        yield str(json.loads(first)["url"])
    finally:
        process.terminate()
        process.wait(30)


@contextlib.contextmanager
def run_redis(url: str | None) -> Iterator[tuple[str, bool]]:
    """The run's Redis: (``url``, False) as given, or (its URL, True) for one started here."""
    if url:
        yield url, False
        return
    with redis_server() as server:
        yield server.url, True
