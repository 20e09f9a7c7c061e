"""``async with store.audited(run, domain, action)`` and ``@store.audit`` for coroutines.

The asyncio twin of :mod:`rac_store.audited`: the same :class:`AuditedAction`
and the same ack for each outcome; only the sending is awaited. The ack is sent
under :func:`asyncio.shield`, so cancelling the task while (or after) the block
runs still records the outcome: a cancelled block acks a failure
``"CancelledError: <message>"``, and a second cancellation that arrives while that
ack is being sent does not stop the send (it is still re-raised).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol

from ..audited import AuditedAction, AuditedBlock, F, run_id_finder
from ..models import DomainAck
from ..validation import action_key

_log = logging.getLogger("rac_store")
_in_flight: set[asyncio.Future[Any]] = set()
"""Acks still being sent for a caller that was cancelled meanwhile (kept referenced)."""


class AsyncAckSender(Protocol):
    """What the asyncio context manager needs of a store."""

    def add_ack(self, run_id: uuid.UUID | str, ack: DomainAck) -> Awaitable[Any]:
        """Record one ack."""


def _report_orphan(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        _log.error("the ack of a cancelled audited block failed: %r", future.exception())


async def send_shielded(sending: Awaitable[Any]) -> Any:
    """Await ``sending``; cancelling the caller meanwhile does not stop it.

    When the caller is cancelled before the send finishes, the send goes on and
    an error it meets is logged on the ``rac_store`` logger (there is nobody left
    to raise it to); the expectation's deadline then reports the action missing.
    """
    future = asyncio.ensure_future(sending)
    _in_flight.add(future)
    future.add_done_callback(_in_flight.discard)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        # only a caller cancelled meanwhile has not heard of the send's error
        future.add_done_callback(_report_orphan)
        raise


class AsyncAudited(AuditedBlock[AsyncAckSender]):
    """``async with store.audited(run, domain, action) as action:`` on an AsyncAuditStore."""

    async def __aenter__(self) -> AuditedAction:
        return self._enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await send_shielded(self._store.add_ack(*self._leave(exc)))


def audit_async(
    store: AsyncAckSender, domain: str, action: str, run_id_arg: str
) -> Callable[[F], F]:
    """``@store.audit(...)`` of an asyncio store: each call of the coroutine function is one
    audited block (TypeError for a plain function: its ack could not be awaited)."""
    action_key(domain, action)

    def decorate(func: F) -> F:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(
                f"{func.__qualname__} is not a coroutine function: audit it with a sync AuditStore"
            )
        find = run_id_finder(func, run_id_arg)

        @functools.wraps(func)
        async def run(*args: Any, **kwargs: Any) -> Any:
            async with AsyncAudited(store, find(args, kwargs), domain, action):
                return await func(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate
