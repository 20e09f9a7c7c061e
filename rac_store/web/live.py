"""The live findings feed: Server-Sent Events from every shard's findings stream.

Events come from :meth:`AsyncAuditReconciler.iter_findings` (``XREAD BLOCK`` on one
server, per-shard polling on a cluster), starting at the stream positions the
page was rendered with, so nothing written after the page was read is missed. A
comment line every ``keepalive_s`` keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

from ..aio.reconciler import AsyncAuditReconciler
from ..models import Finding, FindingType

_log = logging.getLogger("rac_store.web")

RETRY_MS = 2000
"""How long a browser waits before it reconnects (``retry:``)."""


def dumps(value: Any) -> str:
    """JSON with ``<``, ``>`` and ``&`` escaped, so that no text in it reads as markup."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def sse(event: str, data: Any, event_id: str | None = None) -> str:
    """One Server-Sent Event whose data is one line of JSON."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {dumps(data)}\n\n"


def finding_event(finding: Finding) -> str:
    """The event of one finding (its id: ``<stream id>@<shard>``)."""
    return sse("finding", finding.to_dict(), f"{finding.stream_id}@{finding.shard}")


async def finding_events(
    reconciler: AsyncAuditReconciler,
    since: str | Mapping[int, str],
    types: Collection[FindingType],
    *,
    block_ms: int = 1000,
    keepalive_s: float = 15.0,
) -> AsyncIterator[str]:
    """The events of findings of ``types`` (all when empty) from ``since`` on, until closed.

    A store error ends the stream with an ``error`` event that carries its message.
    """
    queue: asyncio.Queue[Finding | Exception] = asyncio.Queue(maxsize=1000)
    stopped = asyncio.Event()

    async def pump() -> None:
        try:
            async for finding in reconciler.iter_findings(
                since=since, follow=True, block_ms=block_ms, should_stop=stopped.is_set
            ):
                await queue.put(finding)
        except Exception as exc:  # handed to the client as an error event, not swallowed
            _log.warning("live findings feed failed: %s", exc)
            await queue.put(exc)

    task = asyncio.create_task(pump())
    try:
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), keepalive_s)
            except asyncio.TimeoutError:
                yield ": keepalive\n\n"
                continue
            if isinstance(item, Exception):
                yield sse("error", {"error": type(item).__name__, "message": str(item)})
                return
            if not types or item.type in types:
                yield finding_event(item)
    finally:
        stopped.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
