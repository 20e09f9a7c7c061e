"""Helpers for users' tests: a fresh embedded store per test, no Redis needed.

Installed as a pytest plugin (entry point ``pytest11``), so any project that
depends on rac_store can ask for the ``audit_store`` fixture::

    def test_my_orchestrator(audit_store):
        run_my_code(store=audit_store)
        assert audit_store.get_pending_run_ids() == []

The store runs the very same Lua scripts as production, on a private
in-process server that disappears with the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .embedded import create_embedded_client
from .store import AuditStore, reset_audit_store


def embedded_store(**options: Any) -> AuditStore:
    """A new store on its own in-process server (options as for AuditStore)."""
    return AuditStore(create_embedded_client(), **options)


@pytest.fixture
def audit_store() -> Iterator[AuditStore]:
    """A fresh embedded AuditStore; the process-wide singleton is reset around it."""
    reset_audit_store()
    store = embedded_store()
    yield store
    store.close()
    reset_audit_store()
