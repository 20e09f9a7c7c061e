"""The design rac_store replaces, kept for comparison only (never use it).

Each process keeps a run's acks in a local list and, on every ack, rewrites the
whole list as one JSON value with SETEX; reads GET it back. That is the
algorithm of the old ``AuditStore`` (``rac:acks:{run_id}`` and
``rac:expectations:{run_id}``, TTL one hour): O(n) work per ack, and when two
processes write one run the last writer wins, so acks are lost. Unlike the old
code, Redis errors are not swallowed here, so a failed benchmark says so.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from rac_store.models import AuditExpectation, DomainAck

TTL_SECONDS = 3600


class LegacyAuditStore:
    """Per-process lists mirrored to Redis as whole JSON values."""

    def __init__(self, client: Any, prefix: str = "rac", ttl_seconds: int = TTL_SECONDS) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._acks: dict[str, list[DomainAck]] = {}
        self._expectations: dict[str, list[AuditExpectation]] = {}
        self._lock = threading.Lock()

    @property
    def prefix(self) -> str:
        """The prefix of every key this store writes."""
        return self._prefix

    def acks_key(self, run_id: uuid.UUID | str) -> str:
        """Where a run's acks live: one JSON list."""
        return f"{self._prefix}:acks:{run_id}"

    def expectations_key(self, run_id: uuid.UUID | str) -> str:
        """Where a run's expectations live: one JSON list."""
        return f"{self._prefix}:expectations:{run_id}"

    def add_expectations(
        self, run_id: uuid.UUID | str, expectations: Iterable[AuditExpectation]
    ) -> None:
        """Append to the local list, then rewrite the whole list in Redis."""
        run = str(run_id)
        with self._lock:
            items = self._expectations.setdefault(run, [])
            items.extend(expectations)
            self._setex(self.expectations_key(run), _dump(items))

    def add_ack(self, run_id: uuid.UUID | str, ack: DomainAck) -> None:
        """Append to the local list, then rewrite the whole list in Redis (O(n))."""
        run = str(run_id)
        with self._lock:
            items = self._acks.setdefault(run, [])
            items.append(ack)
            self._setex(self.acks_key(run), _dump(items))

    def preload(self, run_id: uuid.UUID | str, acks: list[DomainAck]) -> None:
        """Put a run in the state ``add_ack`` of each of ``acks`` leaves it (in O(n), not O(n²))."""
        run = str(run_id)
        with self._lock:
            self._acks[run] = list(acks)
            self._setex(self.acks_key(run), _dump(self._acks[run]))

    def _setex(self, key: str, value: str) -> None:
        self._client.execute_command("SETEX", key, self._ttl, value)

    def get_acks(self, run_id: uuid.UUID | str) -> list[dict[str, Any]]:
        """The acks Redis holds for a run (whatever the last writer left)."""
        raw = self._client.get(self.acks_key(run_id))
        return [] if raw is None else list(json.loads(raw))

    def clear_run(self, run_id: uuid.UUID | str) -> None:
        """Forget a run locally and in Redis."""
        run = str(run_id)
        with self._lock:
            self._acks.pop(run, None)
            self._expectations.pop(run, None)
        self._client.delete(self.acks_key(run), self.expectations_key(run))


def _dump(items: list[Any]) -> str:
    return json.dumps([item.to_dict() for item in items])
