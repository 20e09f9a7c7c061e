"""Findings consumers with delivery guarantees, sans-I/O: consumer groups over every shard.

One Redis consumer group per shard stream ``P:{s}:findings``, all with the same
name: each event goes to one consumer of the group, stays pending until that
consumer acks it, and can be claimed by another consumer when it has been pending
too long (its consumer died). The group of a shard is created on first use at
the oldest event the stream still holds (``lua/read_group.lua``).

The streams are bounded (``XADD MAXLEN ~``). A group that falls behind the bound
loses the trimmed events; it learns how many, once, as a :class:`Finding` of type
``GAP`` (``details["lost"]``), delivered among the events: from
``read_group.lua`` (trimmed before the group read them) and from ``XAUTOCLAIM``
(delivered to a consumer, trimmed before it acked them).

Each operation is a generator of steps: it yields the calls to send (or a
:class:`Pause`) and receives their replies; :mod:`rac_store.consumer` and
:mod:`rac_store.aio.consumer` drive them, sync or async.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .core import Call, CommandCall, StoreCore, parse_server_time, positive_int, text
from .errors import InvalidInputError
from .findings import _entries as xread_entries
from .findings import _id_order, parse_event
from .models import Finding, FindingType
from .scripts import Arg, Script, ScriptCall

T = TypeVar("T")

MAX_NAME_BYTES = 128
CLAIM_PAGE = 100
"""Entries asked of one ``XAUTOCLAIM`` call."""
SOURCE = "consumer"
"""The ``source`` of a GAP record."""


@dataclass(frozen=True)
class Pause:
    """A step that asks the driver to wait (a follower polling a cluster's shards)."""

    seconds: float


Steps = Generator[Call | Pause, Any, T]
"""An operation: yields calls (or pauses), receives their replies, returns its result."""


def check_name(value: object, what: str) -> str:
    """A group or consumer name: 1..128 UTF-8 bytes, no whitespace or control characters."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size == 0 or size > MAX_NAME_BYTES:
        raise InvalidInputError(f"{what} must be 1..{MAX_NAME_BYTES} UTF-8 bytes: {value!r:.80}")
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in value):
        raise InvalidInputError(f"{what} must have no whitespace or control characters")
    return value


def gap_record(shard: int, lost: int, now_ms: int, group: str, why: str) -> Finding:
    """The GAP record of ``lost`` events of ``shard`` (-1: an unknown number) the group lost."""
    return Finding(
        type=FindingType.GAP,
        run_id="",
        at_ms=now_ms,
        source=SOURCE,
        details={"lost": "unknown" if lost < 0 else str(lost), "group": group, "reason": why},
        shard=shard,
    )


def lost_count(finding: Finding) -> int | None:
    """How many events a GAP record says were lost (None: unknown, or not a GAP)."""
    value = finding.details.get("lost", "") if finding.type is FindingType.GAP else ""
    return int(value) if value.isdigit() else None


TRIMMED_UNREAD = "trimmed before the group read them"
TRIMMED_PENDING = "delivered, then trimmed before a consumer acked them"


def _fields(raw: Any) -> Mapping[Any, Any]:
    """An entry's fields: a dict (redis-py parsed it) or a flat name/value list (a script)."""
    if isinstance(raw, Mapping):
        return raw
    return dict(zip(raw[::2], raw[1::2], strict=True))


def _parse_entries(shard: int, entries: Iterable[Any]) -> list[Finding]:
    return [
        parse_event(_fields(fields), shard=shard, stream_id=text(entry_id))
        for entry_id, fields in entries
    ]


@dataclass(frozen=True)
class Backlog:
    """Where a group stands in each shard: events not delivered yet, delivered and not acked."""

    lag: dict[int, int | None]
    """Events of the shard not yet delivered to the group (None: Redis cannot tell)."""
    pending: dict[int, int]
    """Events delivered to a consumer of the group and not acked yet."""

    @property
    def total_lag(self) -> int:
        """Events not yet delivered, over every shard whose lag is known."""
        return sum(v for v in self.lag.values() if v is not None)

    @property
    def total_pending(self) -> int:
        """Events delivered and not acked, over every shard."""
        return sum(self.pending.values())


def _group_info(reply: Any, group: str) -> dict[str, Any] | None:
    """The ``XINFO GROUPS`` entry of ``group`` (dicts from redis-py, or flat lists)."""
    for raw in reply or ():
        info = {text(k): v for k, v in _fields(raw).items()}
        if text(info.get("name", "")) == group:
            return info
    return None


@dataclass
class GroupCursor:
    """One consumer of one group: the calls it makes, and what it knows of each shard.

    ``seen[s]`` is the last id of shard ``s``'s stream this consumer knows it has
    nothing to wait for before; ``behind`` holds the shards that may have events
    not delivered to the group yet.
    """

    core: StoreCore
    group: str
    consumer: str
    per_shard: bool = False
    """A Redis Cluster: one command per shard (keys of one command share a slot)."""
    poll_ms: int = 100
    seen: list[str] = field(default_factory=list)
    behind: set[int] = field(default_factory=set)
    ready: bool = False
    """True once every shard's group exists (created on first use)."""
    _shard_of: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name(self.group, "group")
        check_name(self.consumer, "consumer")
        keys = self.core.keys.all_findings()
        self.seen = ["0"] * len(keys)
        self.behind = set(range(len(keys)))
        self._shard_of = {key: shard for shard, key in enumerate(keys)}

    # -- calls -------------------------------------------------------------------------
    def read_call(self, shard: int, count: int) -> ScriptCall:
        """``read_group.lua`` on one shard: create the group, count losses, deliver events."""
        key = self.core.keys.findings(shard)
        return ScriptCall(
            Script.READ_GROUP, (key,), (self.group, self.consumer, count), "consumer.read"
        )

    def wait_call(self, block_ms: int | None) -> CommandCall:
        """An ``XREAD`` after the ids seen: which shards have something new (``BLOCK`` if asked)."""
        return self.core.read_findings(self.seen, 1, block_ms, self.per_shard)

    def claim_call(
        self, shards: Sequence[int], starts: Mapping[int, str], min_idle_ms: int
    ) -> CommandCall:
        """One ``XAUTOCLAIM`` per shard, from each shard's cursor."""
        commands = [
            (
                "XAUTOCLAIM",
                self.core.keys.findings(s),
                self.group,
                self.consumer,
                min_idle_ms,
                starts[s],
                "COUNT",
                CLAIM_PAGE,
            )
            for s in shards
        ]
        return CommandCall([*commands, ("TIME",)], "consumer.claim")

    def ack_call(self, ids_by_shard: Mapping[int, Sequence[str]]) -> CommandCall:
        """One ``XACK`` per shard that has ids."""
        commands = [
            ("XACK", self.core.keys.findings(s), self.group, *ids)
            for s, ids in sorted(ids_by_shard.items())
        ]
        return CommandCall(commands, "consumer.ack")

    def dead_letter_call(self, finding: Finding, reason: str, tries: int) -> ScriptCall:
        """``dead_letter.lua``: move one event to its shard's dead-letter stream, acked."""
        shard = finding.shard if finding.shard is not None else 0
        keys = (self.core.keys.findings(shard), self.core.keys.dead_letters(shard))
        args: list[Arg] = [
            self.group,
            finding.stream_id or "",
            self.core.findings_maxlen,
            reason,
            tries,
        ]
        for name, value in event_fields(finding).items():
            args += (name, value)
        return ScriptCall(Script.DEAD_LETTER, keys, args, "consumer.dead_letter")

    def backlog_call(self) -> CommandCall:
        """``XINFO GROUPS`` of every shard's stream."""
        commands = [("XINFO", "GROUPS", key) for key in self.core.keys.all_findings()]
        return CommandCall(commands, "consumer.backlog")

    # -- operations --------------------------------------------------------------------
    def ensure_steps(self) -> Steps[list[Finding]]:
        """First use: create every shard's group (and report what a group lost meanwhile)."""
        gaps: list[Finding] = []
        if not self.ready:
            for shard in range(self.core.keys.shards):
                gaps += self._delivered(shard, 0, (yield self.read_call(shard, 0)))
            self.ready = True
        return gaps

    def _delivered(self, shard: int, count: int, reply: Sequence[Any]) -> list[Finding]:
        """The GAP record and events of one ``read_group`` reply; updates what is behind."""
        lost, now_ms, last_id, entries = int(reply[0]), int(reply[1]), text(reply[2]), reply[3]
        found = [gap_record(shard, lost, now_ms, self.group, TRIMMED_UNREAD)] if lost else []
        events = _parse_entries(shard, entries)
        if count and len(events) < count:
            self.behind.discard(shard)
            self.seen[shard] = last_id
        return found + events

    def read_steps(self, count: int, block_ms: int | None) -> Steps[list[Finding]]:
        """Up to ``count`` events not delivered to the group yet (and any GAP records).

        ``block_ms``: wait that long for events when there are none (None: do not wait).
        """
        positive_int(count, "count")
        if block_ms is not None:
            positive_int(block_ms, "block_ms")
        found = yield from self.ensure_steps()
        waited = 0
        while True:
            # Which shards have something new since last seen (waiting only if none is behind).
            idle = not (self.per_shard or self.behind or found)
            self.behind |= self._news((yield self.wait_call(block_ms if idle else None)))
            if not self.behind:
                # Nothing new: a blocking XREAD has waited already; a cluster polls.
                if found or block_ms is None or not self.per_shard or waited >= block_ms:
                    return found
                yield Pause(self.poll_ms / 1000)
                waited += self.poll_ms
                continue
            events = 0
            for shard in sorted(self.behind):
                if events >= count:
                    break
                want = count - events
                batch = self._delivered(shard, want, (yield self.read_call(shard, want)))
                events += sum(1 for f in batch if f.type is not FindingType.GAP)
                found += batch
            if found or block_ms is None:
                found.sort(key=_id_order)
                return found
            # What was new went to other consumers of the group: wait again.

    def _news(self, replies: Sequence[Any]) -> set[int]:
        """The shards an ``XREAD`` after the ids seen found events in."""
        return {
            self._shard_of[text(key)]
            for reply in replies
            for key, entries in xread_entries(reply)
            if entries
        }

    def claim_steps(self, min_idle_ms: int, count: int) -> Steps[list[Finding]]:
        """Events pending longer than ``min_idle_ms`` in the group, now this consumer's.

        Pending entries that the stream trimmed meanwhile come back as a GAP record.
        """
        if isinstance(min_idle_ms, bool) or not isinstance(min_idle_ms, int) or min_idle_ms < 0:
            raise InvalidInputError(f"min_idle_ms must be a non-negative int: {min_idle_ms!r:.80}")
        positive_int(count, "count")
        found = yield from self.ensure_steps()
        starts = dict.fromkeys(range(self.core.keys.shards), "0-0")
        shards = list(starts)
        claimed = 0
        while shards and claimed < count:
            *replies, now = yield self.claim_call(shards, starts, min_idle_ms)
            now_ms = parse_server_time([now])
            more = []
            for shard, (cursor, entries, deleted) in zip(shards, replies, strict=True):
                events = _parse_entries(shard, entries)
                claimed += len(events)
                found += events
                if deleted:
                    found.append(
                        gap_record(shard, len(deleted), now_ms, self.group, TRIMMED_PENDING)
                    )
                starts[shard] = text(cursor)
                if starts[shard] != "0-0":
                    more.append(shard)
            shards = more
        found.sort(key=_id_order)
        return found

    def ack_steps(self, findings: Iterable[Finding]) -> Steps[int]:
        """Acknowledge delivered events (GAP records have nothing to ack); how many were pending."""
        ids: dict[int, list[str]] = defaultdict(list)
        for finding in findings:
            if finding.stream_id is not None and finding.shard is not None:
                ids[finding.shard].append(finding.stream_id)
        if not ids:
            return 0
        return sum(int(n) for n in (yield self.ack_call(ids)))

    def dead_letter_steps(self, finding: Finding, reason: str, tries: int) -> Steps[str | None]:
        """Move an event to its shard's dead-letter stream (acked); None when not pending."""
        reply = yield self.dead_letter_call(finding, reason, tries)
        return text(reply) if reply else None

    def backlog_steps(self) -> Steps[Backlog]:
        """The group's lag and pending count in every shard."""
        yield from self.ensure_steps()
        lag: dict[int, int | None] = {}
        pending: dict[int, int] = {}
        for shard, reply in enumerate((yield self.backlog_call())):
            info = _group_info(reply, self.group) or {}
            value = info.get("lag")
            lag[shard] = None if value is None else int(value)
            pending[shard] = int(info.get("pending", 0))
        return Backlog(lag, pending)


def event_fields(finding: Finding) -> dict[str, str]:
    """The stream fields of an event (the inverse of :func:`~rac_store.findings.parse_event`)."""
    values = {
        "type": finding.type.value,
        "run_id": finding.run_id,
        "at_ms": str(finding.at_ms),
        "source": finding.source,
    }
    for name in ("domain", "action", "due_ms"):
        value = getattr(finding, name)
        if value is not None:
            values[name] = str(value)
    return values | finding.details
