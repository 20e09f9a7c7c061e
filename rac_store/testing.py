"""Helpers for users' tests: a fresh embedded store per test, no Redis needed.

Installed as a pytest plugin (entry point ``pytest11``), so any project that
depends on rac_store can ask for the ``audit_store`` fixture::

    def test_my_orchestrator(audit_store):
        run_my_code(store=audit_store)
        assert audit_store.get_pending_run_ids() == []

During such a test the fixture's store is also the process-wide one: code under
test that calls ``get_audit_store()`` or ``get_audit_reconciler()`` gets it (and
a reconciler over it), whatever ``AOS_MODE`` says; the previous one is back after
the test. ``async_audit_store`` is an :class:`~rac_store.aio.store.AsyncAuditStore`
on a fresh embedded server, for ``asyncio.run(...)`` inside the test (or an async
test, with pytest-asyncio or anyio; neither is needed).

The stores run the very same Lua scripts as production, on a private in-process
server that disappears with the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from .aio.store import AsyncAuditStore
from .embedded import create_embedded_async_client, create_embedded_client
from .store import AuditStore, swap_audit_store


def embedded_store(**options: Any) -> AuditStore:
    """A new store on its own in-process server (options as for AuditStore)."""
    return AuditStore(create_embedded_client(), **options)


def embedded_async_store(**options: Any) -> AsyncAuditStore:
    """A new asyncio store on its own in-process server (options as for AsyncAuditStore)."""
    return AsyncAuditStore(create_embedded_async_client(), **options)


@pytest.fixture
def audit_store() -> Iterator[AuditStore]:
    """A fresh embedded AuditStore, also the process-wide one (``get_audit_store()``)."""
    store = embedded_store()
    previous = swap_audit_store(store)
    try:
        yield store
    finally:
        swap_audit_store(previous)
        store.close()


@pytest.fixture
def async_audit_store() -> Iterator[AsyncAuditStore]:
    """A fresh embedded AsyncAuditStore; it binds to the event loop that first uses it."""
    store = embedded_async_store()
    yield store
    asyncio.run(store.aclose())  # sends what is still queued, then closes
