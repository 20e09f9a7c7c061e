"""Findings events written straight into a shard's stream, as the scripts write them.

The consumer and notifier tests need many events of known shards; writing them with
``XADD … MAXLEN ~`` (what ``emit`` in ``lua/includes/common.lua`` sends) keeps those
tests independent of which script appends which verdict.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from rac_store.keys import KeySpace


def add_event(
    client: Any,
    keys: KeySpace,
    maxlen: int,
    kind: str = "INCOMPLETE",
    run_id: str | None = None,
    **fields: str,
) -> tuple[int, str, str]:
    """Append one event of a new (or the given) run; its (shard, stream id, run id)."""
    run = run_id or str(uuid.uuid4())
    shard = keys.shard_of(run)
    values = {"type": kind, "run_id": run, "at_ms": str(int(time.time() * 1000))}
    values |= {"source": "reconcile", **fields}
    entry = client.xadd(keys.findings(shard), values, maxlen=maxlen, approximate=True)
    return shard, entry.decode() if isinstance(entry, bytes) else str(entry), run
