"""An embedded server belongs to one process: anywhere else it refuses, loudly.

The embedded server (:class:`~rac_store.embedded.EmbeddedServer`) keeps its data
in the memory of the process that made it. A forked child inherits a copy, so its
writes never reach the parent; a worker started by ``multiprocessing`` (spawn,
forkserver) that makes its own default store gets a private, empty one. Either
way acks would be lost without a word. Instead:

* after a fork, every embedded server the child inherited has its lock replaced
  by a :class:`RefusingLock` (``os.register_at_fork``): the child's first command
  raises :class:`~rac_store.errors.EmbeddedStoreInOtherProcessError` and never
  touches the real lock, which another thread of the parent may have held at the
  fork (so the child cannot deadlock on it);
* a store that picks the embedded server *by default* (no client given, no
  ``RAC_REDIS_URL``) inside a ``multiprocessing`` worker gets a refusing server
  from the start (:func:`default_server`);
* an embedded store cannot be pickled (:func:`refuse_pickling`).

Nothing is checked per command: the owner process runs at full speed, and only a
process that must not use the server pays (with an exception).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import weakref
from typing import Any, Protocol

from .errors import EmbeddedStoreInOtherProcessError

SHARE_HINT = (
    "to share one store between processes, run `rac-store serve` and use"
    " AuditStore.from_url('redis://127.0.0.1:PORT') in every process, or set RAC_REDIS_URL"
    " to a Redis server"
)
"""The fix, named in every refusal."""


class RefusingLock:
    """Stands in for a server's lock where the server must not be used: entering it raises."""

    def __init__(self, message: str) -> None:
        self.message = message

    def _refuse(self) -> EmbeddedStoreInOtherProcessError:
        return EmbeddedStoreInOtherProcessError(self.message)

    def __enter__(self) -> None:
        raise self._refuse()

    def __exit__(self, *exc_info: object) -> None:
        """Never reached: entering raised."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Raises: the server is not this process's."""
        raise self._refuse()

    def release(self) -> None:
        """Nothing was acquired."""

    def locked(self) -> bool:
        """Never held."""
        return False


class OwnedServer(Protocol):
    """What the guard needs of a server: its owner's pid and a lock it may replace."""

    owner_pid: int
    lock: Any


_servers: weakref.WeakSet[Any] = weakref.WeakSet()


def adopt(server: OwnedServer) -> None:
    """Record that ``server`` belongs to this process (its lock is refused after a fork)."""
    server.owner_pid = os.getpid()
    _servers.add(server)


def refuse(server: OwnedServer, message: str) -> None:
    """Make every later command on ``server`` raise EmbeddedStoreInOtherProcessError."""
    server.lock = RefusingLock(message)


def forked_message(owner_pid: int) -> str:
    """Why a forked child may not use its parent's embedded server."""
    return (
        f"this embedded store's server lives in process {owner_pid}, and this is process"
        f" {os.getpid()}, a fork of it: whatever is written here never reaches it"
        f" (nothing was written); {SHARE_HINT}"
    )


def worker_message() -> str:
    """Why a multiprocessing worker may not make a default embedded store."""
    return (
        f"AuditStore() with no Redis in process {os.getpid()}, a worker started by"
        f" process {os.getppid()}, would be a private in-process store that no other process sees:"
        f" acks sent here would be lost (nothing was written); {SHARE_HINT}."
        " A store private to this process on purpose: pass an embedded client,"
        " AuditStore(rac_store.embedded.create_embedded_client())"
    )


_STARTED_BY_MULTIPROCESSING = ("--multiprocessing-fork", "from multiprocessing.forkserver import")


def in_worker_process() -> bool:
    """True in a process started by ``multiprocessing`` (any start method).

    A spawn or forkserver worker imports the parent's main module before
    ``multiprocessing.parent_process()`` is set, so its command line is read too.
    """
    if multiprocessing.parent_process() is not None:
        return True
    argv = getattr(sys, "orig_argv", ())
    return any(marker in arg for arg in argv for marker in _STARTED_BY_MULTIPROCESSING)


def refuse_pickling(what: str) -> EmbeddedStoreInOtherProcessError:
    """The error for sending an embedded store to another process."""
    return EmbeddedStoreInOtherProcessError(
        f"{what} cannot be sent to another process: its in-process server stays in process"
        f" {os.getpid()}; {SHARE_HINT}"
    )


def _after_fork_in_child() -> None:
    for server in list(_servers):
        refuse(server, forked_message(server.owner_pid))


os.register_at_fork(after_in_child=_after_fork_in_child)
