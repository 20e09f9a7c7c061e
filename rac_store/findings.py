"""The findings stream, sans-I/O: event fields, sweep replies and a cursor over shards.

Every shard has one bounded stream ``P:{s}:findings``; the scripts that change
a run's state append to it (see docs/reconciler.md for the event format). This
module turns script and ``XREAD`` replies into :class:`~rac_store.models.Finding`
values and keeps a reader's position in every shard; it never talks to Redis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from .core import CommandCall, StoreCore, positive_int, text
from .errors import InvalidInputError
from .models import ActionKey, Finding, FindingType, ReconciliationResult

ACTION_LIST_CAP = 100
"""Most (domain, action) pairs per list in an INCOMPLETE or STALE event (counts are exact)."""

_COMMON_FIELDS = ("type", "run_id", "at_ms", "source", "domain", "action", "due_ms")


def parse_event(
    fields: Mapping[Any, Any], *, shard: int | None = None, stream_id: str | None = None
) -> Finding:
    """A Finding from a stream entry's fields."""
    values = {text(k): text(v) for k, v in fields.items()}
    due = values.get("due_ms")
    return Finding(
        type=FindingType(values["type"]),
        run_id=values["run_id"],
        at_ms=int(values["at_ms"]),
        source=values["source"],
        domain=values.get("domain"),
        action=values.get("action"),
        due_ms=None if due is None else int(float(due)),
        details={k: v for k, v in values.items() if k not in _COMMON_FIELDS},
        shard=shard,
        stream_id=stream_id,
    )


def parse_sweep_reply(run_id: str, shard: int, reply: Sequence[Any]) -> tuple[list[Finding], int]:
    """The findings of one ``sweep_run`` reply and the run's index score after it (-1: gone)."""
    state, now, score = int(reply[0]), int(reply[1]), int(reply[2])

    def found(kind: FindingType, stream_id: Any, due_ms: int, key: str = "|") -> Finding:
        domain, _, action = key.partition("|")
        return Finding(
            type=kind,
            run_id=run_id,
            at_ms=now,
            source="sweep",
            domain=domain or None,
            action=action or None,
            due_ms=due_ms,
            shard=shard,
            stream_id=text(stream_id),
        )

    if state == 1:
        return [found(FindingType.EXPIRED, reply[3], score)], -1
    marks = [
        found(FindingType.MISSING, reply[i + 2], int(reply[i + 1]), text(reply[i]))
        for i in range(3, len(reply), 3)
    ]
    return marks, score


def _pairs(actions: Sequence[ActionKey]) -> str:
    return msgspec.json.encode([list(pair) for pair in actions[:ACTION_LIST_CAP]]).decode()


def verdict_fields(result: ReconciliationResult) -> list[tuple[str, str]]:
    """The fields of the INCOMPLETE or STALE event that records ``result``."""
    return [
        ("missing", str(len(result.missing_actions))),
        ("failed", str(len(result.failed_actions))),
        ("drift", str(len(result.drift_actions))),
        ("stale", "1" if result.stale_run else "0"),
        ("expectations", str(result.expectations_count)),
        ("acks", str(result.acks_count)),
        ("missing_actions", _pairs(result.missing_actions)),
        ("failed_actions", _pairs(result.failed_actions)),
        ("drift_actions", _pairs(result.drift_actions)),
    ]


def _entries(reply: Any) -> list[tuple[Any, Any]]:
    """``XREAD``'s reply as (stream key, entries) pairs (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, Mapping):
        return [
            (key, value[0] if value and isinstance(value[0], list) else value)
            for key, value in reply.items()
        ]
    return [(item[0], item[1]) for item in reply]


Since = str | Mapping[int, str]
"""Where a reader starts: ``"0"`` (everything the streams still hold), ``"$"``
(only events added from now on) or a stream id per shard (missing shards: ``"0"``)."""


@dataclass(frozen=True)
class ReadPlan:
    """How a reader reads: batch size, and whether and how long to wait for more."""

    count: int = 500
    follow: bool = False
    block_ms: int = 1000


class FindingsCursor:
    """A reader's position in every shard's findings stream (one last id per shard).

    Sans-I/O: :meth:`next_call` says what to send, :meth:`feed` takes its reply
    and returns the findings; :attr:`done` and :meth:`pause_after` say whether
    and when to read again (see :class:`rac_store.reconciler.FindingsFeed`).
    """

    POLL_MS = 100
    """On a cluster, the pause after a read that found nothing (streams of many slots
    cannot be waited on by one blocking ``XREAD``)."""

    def __init__(
        self,
        core: StoreCore,
        since: Since = "0",
        per_shard: bool = False,
        plan: ReadPlan = ReadPlan(),
    ) -> None:
        self._core = core
        self._per_shard = per_shard
        self._plan = plan
        positive_int(plan.count, "count")
        positive_int(plan.block_ms, "block_ms")
        keys = core.keys.all_findings()
        self._shard_of = {key: shard for shard, key in enumerate(keys)}
        if isinstance(since, Mapping):
            self.ids = [str(since.get(shard, "0")) for shard in range(len(keys))]
        elif since in ("0", "$"):
            self.ids = ["0" if since == "0" else "$"] * len(keys)
        else:
            raise InvalidInputError(f"since must be '0', '$' or ids per shard, got {since!r:.80}")
        self.done = False
        """True once a reader that does not follow has caught up."""

    def next_call(self) -> CommandCall:
        """The next read: each stream's last id first when starting at ``"$"``, then ``XREAD``.

        The ``XREAD`` blocks when following; on a cluster (``per_shard``) it is one
        non-blocking ``XREAD`` per shard.
        """
        if "$" in self.ids:
            return self._core.findings_tail()
        plan = self._plan
        block = plan.block_ms if plan.follow else None
        return self._core.read_findings(self.ids, plan.count, block, self._per_shard)

    def feed(self, replies: Sequence[Any]) -> list[Finding]:
        """The findings of a :meth:`next_call` reply, oldest first; advances the ids."""
        if "$" in self.ids:
            tail = parse_tail(replies)
            self.ids = [tail[shard] if i == "$" else i for shard, i in enumerate(self.ids)]
            return []
        findings = []
        for reply in replies:
            for key, entries in _entries(reply):
                shard = self._shard_of[text(key)]
                for entry_id, fields in entries:
                    sid = text(entry_id)
                    findings.append(parse_event(fields, shard=shard, stream_id=sid))
                    self.ids[shard] = sid
        # Ids of one server are comparable across its streams; on a cluster each node
        # has its own clock, so the order across shards of different nodes is approximate.
        findings.sort(key=_id_order)
        self.done = not findings and not self._plan.follow
        return findings

    def pause_after(self, findings: Sequence[Finding]) -> float:
        """Seconds to wait before the next read: 0 unless a follower on a cluster found nothing.

        A single server's blocking ``XREAD`` waits by itself; on a cluster the
        reader polls every ``POLL_MS`` (at most ``block_ms``).
        """
        if findings or not self._per_shard or not self._plan.follow:
            return 0.0
        return min(self._plan.block_ms, self.POLL_MS) / 1000


def _id_order(finding: Finding) -> tuple[int, int]:
    ms, _, seq = (finding.stream_id or "0-0").partition("-")
    return (int(ms), int(seq or 0))


def parse_tail(replies: Sequence[Any]) -> dict[int, str]:
    """The last id of each shard's stream ("0" when empty) from ``findings_tail`` replies."""
    return {shard: text(reply[0][0]) if reply else "0" for shard, reply in enumerate(replies)}
