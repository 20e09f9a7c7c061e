"""AsyncFindingsConsumer: the asyncio twin of :class:`~rac_store.consumer.FindingsConsumer`.

It drives the same sans-I/O steps (:mod:`rac_store.findings_groups`) with an
async store's ``execute`` coroutine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..consumer import ConsumerBase
from ..core import Call
from ..findings_groups import Backlog, GroupCursor, Pause, Steps, T
from ..models import Finding


async def drive_async(steps: Steps[T], execute: Callable[[Call], Awaitable[Any]]) -> T:
    """Run ``steps`` with an awaitable ``execute`` (a :class:`Pause` sleeps)."""
    try:
        step = next(steps)
        while True:
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
                step = steps.send(None)
            else:
                step = steps.send(await execute(step))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


class AsyncFindingsConsumer(ConsumerBase):
    """See :class:`~rac_store.consumer.FindingsConsumer`; every method is a coroutine."""

    def __init__(self, execute: Callable[[Call], Awaitable[Any]], cursor: GroupCursor) -> None:
        super().__init__(execute, cursor)

    async def read(self, count: int = 100, block_ms: int | None = None) -> list[Finding]:
        """See :meth:`FindingsConsumer.read`."""
        return await drive_async(self._cursor.read_steps(count, block_ms), self._execute)

    async def ack(self, findings: Iterable[Finding]) -> int:
        """See :meth:`FindingsConsumer.ack`."""
        return await drive_async(self._cursor.ack_steps(findings), self._execute)

    async def claim(self, min_idle_ms: int, count: int = 100) -> list[Finding]:
        """See :meth:`FindingsConsumer.claim`."""
        return await drive_async(self._cursor.claim_steps(min_idle_ms, count), self._execute)

    async def dead_letter(self, finding: Finding, reason: str, tries: int) -> str | None:
        """See :meth:`FindingsConsumer.dead_letter`."""
        steps = self._cursor.dead_letter_steps(finding, reason, tries)
        return await drive_async(steps, self._execute)

    async def backlog(self) -> Backlog:
        """See :meth:`FindingsConsumer.backlog`."""
        return await drive_async(self._cursor.backlog_steps(), self._execute)
