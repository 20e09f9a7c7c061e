"""Worker functions for tests/test_embedded_processes.py, importable by spawn children.

``STORE`` is what a user's module-level ``AuditStore()`` is: made at import, on the
embedded default, in every process that imports this module.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from typing import Any

from rac_store import (
    AckOutcome,
    AsyncAuditStore,
    AuditStore,
    EmbeddedStoreInOtherProcessError,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.embedded import create_embedded_client

STORE = AuditStore()


def ack_on_module_store(run: str) -> AckOutcome:
    """One ack through the module-level store of the process that runs this."""
    return STORE.add_ack(run, create_domain_ack(uuid.UUID(run), "incidents", "create_incident"))


def ack_on_given_store(store: Any, run: str) -> AckOutcome:
    """One ack through a store passed in (pickled to the worker)."""
    outcome: AckOutcome = store.add_ack(
        run, create_domain_ack(uuid.UUID(run), "incidents", "create_incident")
    )
    return outcome


def ack_on_default_store(run: str) -> AckOutcome:
    """One ack through a default store the worker makes itself."""
    return AuditStore().add_ack(
        run, create_domain_ack(uuid.UUID(run), "incidents", "create_incident")
    )


def private_store_round_trip() -> int:
    """A store private to the worker on purpose (an explicit embedded client): it works."""
    store = AuditStore(create_embedded_client())
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    store.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
    return len(store.get_acks(run))


def write_in_a_loop(store: AuditStore, stop: threading.Event) -> None:
    """Declare a run and ack it, again and again, until ``stop`` is set."""
    while not stop.is_set():
        run = uuid.uuid4()
        store.add_expectations(run, create_run_expectations(run))
        store.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))


REFUSED = 17
"""Exit code of :func:`ack_and_exit` when the store refused (EmbeddedStoreInOtherProcessError)."""


def ack_and_exit(store: Any, run: str) -> None:
    """Ack through ``store`` (sync or asyncio); exit REFUSED when it refuses, 0 when it acks."""
    ack = create_domain_ack(uuid.UUID(run), "incidents", "create_incident")
    try:
        if isinstance(store, AsyncAuditStore):
            asyncio.run(store.add_ack(run, ack))
        else:
            store.add_ack(run, ack)
    except EmbeddedStoreInOtherProcessError:
        sys.exit(REFUSED)
    sys.exit(0)
