"""A client proxy between a sync store and its server, for tests that count or fail calls."""

from __future__ import annotations

from typing import Any

from rac_store import AuditStore
from rac_store.sending import Sender


def swap_client(store: AuditStore, client: Any) -> None:
    """Make ``store`` send every later call through ``client`` (e.g. a proxy of its client).

    A proxy that fails calls itself stands for a client that does not re-send by
    itself (``client_resends=0``): only the store's RetryPolicy re-sends.
    """
    store._client = client
    store._sender = Sender(client, store._scripts, store._retry, store._wait_aof, client_resends=0)
