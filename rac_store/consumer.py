"""FindingsConsumer: one consumer of a consumer group over every shard's findings stream (sync).

Made by :meth:`rac_store.reconciler.AuditReconciler.consumer`. The logic lives in
:mod:`rac_store.findings_groups` (sans-I/O steps); this class drives the steps
with a store's ``execute``. :class:`~rac_store.aio.consumer.AsyncFindingsConsumer`
is its asyncio twin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from .core import Call
from .findings_groups import Backlog, GroupCursor, Pause, Steps, T
from .models import Finding


def drive(steps: Steps[T], execute: Callable[[Call], Any]) -> T:
    """Run ``steps`` with a blocking ``execute`` (a :class:`Pause` sleeps)."""
    try:
        step = next(steps)
        while True:
            if isinstance(step, Pause):
                time.sleep(step.seconds)
                step = steps.send(None)
            else:
                step = steps.send(execute(step))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


class ConsumerBase:
    """What the sync and the asyncio consumer share: the sender and the sans-I/O state."""

    def __init__(self, execute: Any, cursor: GroupCursor) -> None:
        self._execute = execute
        self._cursor = cursor

    @property
    def group(self) -> str:
        """The consumer group's name (the same in every shard)."""
        return self._cursor.group

    @property
    def name(self) -> str:
        """This consumer's name within the group."""
        return self._cursor.consumer


class FindingsConsumer(ConsumerBase):
    """Reads findings as consumer ``name`` of group ``group``: at-least-once, shared, gap-aware.

    * :meth:`read` delivers events no consumer of the group has had yet; each event
      goes to one consumer of the group.
    * :meth:`ack` marks events handled; until then they stay pending in the group.
    * :meth:`claim` takes over events pending longer than ``min_idle_ms`` (their
      consumer died or hangs).
    * A group that fell behind the streams' bound gets a ``GAP`` record (a
      :class:`~rac_store.models.Finding` with ``details["lost"]``) among the events,
      once per loss: never silence.
    """

    def __init__(self, execute: Callable[[Call], Any], cursor: GroupCursor) -> None:
        super().__init__(execute, cursor)

    def read(self, count: int = 100, block_ms: int | None = None) -> list[Finding]:
        """Up to ``count`` new events (oldest first, GAP records included); waits up to
        ``block_ms`` for some when there are none (None: does not wait)."""
        return drive(self._cursor.read_steps(count, block_ms), self._execute)

    def ack(self, findings: Iterable[Finding]) -> int:
        """Mark delivered events handled; returns how many were still pending."""
        return drive(self._cursor.ack_steps(findings), self._execute)

    def claim(self, min_idle_ms: int, count: int = 100) -> list[Finding]:
        """Take over events pending in the group longer than ``min_idle_ms`` (about ``count``)."""
        return drive(self._cursor.claim_steps(min_idle_ms, count), self._execute)

    def dead_letter(self, finding: Finding, reason: str, tries: int) -> str | None:
        """Move an event that cannot be delivered to ``P:{s}:findings:dead``, acked in the group.

        Returns the dead letter's id, or None when the event was not pending any more.
        """
        return drive(self._cursor.dead_letter_steps(finding, reason, tries), self._execute)

    def backlog(self) -> Backlog:
        """The group's lag (events not delivered yet) and pending events, per shard."""
        return drive(self._cursor.backlog_steps(), self._execute)
