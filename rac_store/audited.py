"""Acks without hand-written calls: ``with store.audited(...)`` and ``@store.audit(...)``.

The block's outcome is the ack: it ends → a success ack (with the result id the
block set); it raises → a failure ack ``error="<ExceptionType>: <message>"`` and
the exception goes on; it calls :meth:`AuditedAction.rollback` → a rollback ack.
Any ``BaseException`` counts as a failure, so an asyncio cancellation, a
``KeyboardInterrupt`` or a ``SystemExit`` never reads as success (a cancelled
action did not complete): the ack says ``"CancelledError: <message>"``.

This module holds everything the sync context manager (here) and the asyncio one
(:mod:`rac_store.aio.audited`) share: the object the block sees, the ack its
outcome makes, and how a decorator finds the run id among a call's arguments.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from .models import DomainAck, create_domain_ack
from .validation import action_key, canonical_run_id

F = TypeVar("F", bound=Callable[..., Any])

MAX_ERROR_CHARS = 2000
"""Longest ``error`` text an audited block's failure ack carries (the message is cut)."""
CANCELLED_MESSAGE = "cancelled before the block finished"
"""The message of a failure ack for a cancellation that came without one."""

_current: contextvars.ContextVar[AuditedAction | None] = contextvars.ContextVar(
    "rac_store_audited_action", default=None
)


class AuditedAction:
    """What an audited block (or function) sees: set ``result_id``, or ``rollback(reason)``."""

    __slots__ = ("action", "domain", "result_id", "rollback_reason", "rolled_back", "run_id")

    def __init__(
        self, run_id: uuid.UUID | str, domain: str, action: str, result_id: str | None = None
    ) -> None:
        self.run_id = uuid.UUID(canonical_run_id(run_id))
        action_key(domain, action)  # a bad name fails before the block runs, not after
        self.domain = domain
        self.action = action
        self.result_id = result_id
        """The id of what the action made (e.g. an incident id), sent with the ack."""
        self.rolled_back = False
        self.rollback_reason: str | None = None

    def rollback(self, reason: str | None = None) -> None:
        """Mark the action undone: the ack says ROLLED_BACK (a failure), however the block ends."""
        self.rolled_back = True
        self.rollback_reason = reason

    def ack(self, exc: BaseException | None) -> DomainAck:
        """The ack of the block's outcome (``exc``: what it raised, None when it ended)."""
        return create_domain_ack(
            self.run_id,
            self.domain,
            self.action,
            result_id=self.result_id,
            error=None if exc is None else describe_error(exc),
            rolled_back=self.rolled_back,
            rollback_reason=self.rollback_reason,
        )

    def __repr__(self) -> str:
        return f"AuditedAction({self.run_id}, {self.domain!r}, {self.action!r})"


def describe_error(exc: BaseException) -> str:
    """``"<ExceptionType>: <message>"``, at most :data:`MAX_ERROR_CHARS` characters."""
    message = str(exc)
    if not message:
        message = CANCELLED_MESSAGE if isinstance(exc, asyncio.CancelledError) else "(no message)"
    text = f"{type(exc).__name__}: {message}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def current_action() -> AuditedAction | None:
    """The innermost audited block or function running in this context (None outside one).

    A decorated function uses it to set its result id or to roll back.
    """
    return _current.get()


S = TypeVar("S")


class AuditedBlock(Generic[S]):
    """What the sync and the asyncio context manager share: the action, made current while
    its block runs, and the ack of its outcome."""

    def __init__(
        self,
        store: S,
        run_id: uuid.UUID | str,
        domain: str,
        action: str,
        result_id: str | None = None,
    ) -> None:
        self._store = store
        self.action = AuditedAction(run_id, domain, action, result_id)
        self._token: contextvars.Token[AuditedAction | None] | None = None

    def _enter(self) -> AuditedAction:
        self._token = _current.set(self.action)
        return self.action

    def _leave(self, exc: BaseException | None) -> tuple[uuid.UUID, DomainAck]:
        """The block ended (``exc``: what it raised): the run id and the ack to send."""
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        return self.action.run_id, self.action.ack(exc)


class SyncAckSender(Protocol):
    """What the sync context manager needs of a store."""

    def add_ack(self, run_id: uuid.UUID | str, ack: DomainAck) -> Any:
        """Record one ack."""


class Audited(AuditedBlock[SyncAckSender]):
    """``with store.audited(run, domain, action) as action:`` (see the module docstring).

    The ack is sent when the block ends, also when it raises. If the ack cannot be
    sent, the store's error is raised (the block's own exception is its
    ``__context__``): an action whose ack was lost must not look recorded.
    """

    def __enter__(self) -> AuditedAction:
        return self._enter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._store.add_ack(*self._leave(exc))


def run_id_finder(
    func: Callable[..., Any], run_id_arg: str
) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """A function that picks the argument named ``run_id_arg`` out of a call of ``func``.

    TypeError at decoration time when ``func`` has no such parameter.
    """
    signature = inspect.signature(func)
    if run_id_arg not in signature.parameters:
        raise TypeError(f"{func.__qualname__} has no parameter {run_id_arg!r} to take the run id")

    def find(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments[run_id_arg]

    return find


def audit_sync(store: SyncAckSender, domain: str, action: str, run_id_arg: str) -> Callable[[F], F]:
    """``@store.audit(...)`` of a sync store: each call of the function is one audited block.

    Coroutine functions are accepted too: the ack is sent (blocking) when the
    coroutine ends, is cancelled or raises.
    """
    action_key(domain, action)

    def decorate(func: F) -> F:
        find = run_id_finder(func, run_id_arg)
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with Audited(store, find(args, kwargs), domain, action):
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with Audited(store, find(args, kwargs), domain, action):
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate
