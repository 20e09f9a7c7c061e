"""Run an AsyncAuditStore from synchronous tests, so the contract suite covers it unchanged.

The store's coroutines run on one event loop in a thread of its own; the facade
offers the sync ``AuditStore`` API by handing each coroutine to that loop and
waiting for its result (or error).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from rac_store import AsyncAuditStore

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="async-store-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the loop and return its result (or raise its error)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class SyncFacade:
    """The sync AuditStore API over an AsyncAuditStore: each coroutine method becomes blocking.

    Attributes that are not coroutine methods (properties, ``core``, ``_scripts``)
    are the async store's own.
    """

    def __init__(self, store: AsyncAuditStore, runner: LoopThread) -> None:
        self.async_store = store
        self._runner = runner

    @classmethod
    def open(cls, runner: LoopThread, make_client: Callable[[], Any], **options: Any) -> SyncFacade:
        """A store made (and initialized, as AuditStore's constructor does) on the loop."""

        async def make() -> AsyncAuditStore:
            store = AsyncAuditStore(make_client(), **options)
            try:
                await store.initialize()
            except BaseException:
                await store.client.aclose()
                raise
            return store

        return cls(runner.run(make()), runner)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.async_store, name)
        if not inspect.iscoroutinefunction(value):
            return value

        @functools.wraps(value)
        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._runner.run(value(*args, **kwargs))

        return blocking

    def close(self) -> None:
        """Send queued acks and close the async client (AuditStore.close's counterpart)."""
        self._runner.run(self.async_store.aclose())
