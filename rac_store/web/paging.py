"""Bounded pages of the pending indexes and the findings streams, sans-I/O.

Nothing here talks to Redis and nothing scans: every page is one ``ZRANGEBYSCORE
… LIMIT`` or ``XREVRANGE … COUNT`` per shard, merged in Python. The position of a
page travels in the URL as a short token:

* pending runs: how many runs of each shard's window earlier pages showed
  (:class:`ShardOffsets`, ``"3:2.7:1"`` = shard 3 at 2, shard 7 at 1);
* findings: the last event shown, ``"<stream id>@<shard>"`` (:class:`FeedMark`),
  events ordered newest first by (stream id, shard);
* the live feed's start: the last stream id of every shard (:func:`positions_token`).
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import CommandCall, StoreCore, score_pairs, text
from ..errors import InvalidInputError
from ..findings import parse_event
from ..models import Finding, FindingType

DEFAULT_PAGE = 25
"""Rows per page unless the URL asks for another count."""
MAX_PAGE = 200
"""Most rows one page shows."""
FILTER_SCAN = 100
"""Events read per shard for one page of a filtered feed (the page may come out short)."""

_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")
_MAX_ID_PART = 2**64 - 1
"""Each part of a stream id is an unsigned 64-bit number (Redis refuses a larger one)."""


def page_size(value: str | None) -> int:
    """A page size from a query parameter: 1..MAX_PAGE (DEFAULT_PAGE when absent)."""
    if value is None or value == "":
        return DEFAULT_PAGE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidInputError(f"limit must be 1..{MAX_PAGE}, got {value!r:.40}")
    return int(value)


def page_number(value: str | None, what: str) -> int:
    """A 0-based page number from a query parameter (0 when absent)."""
    if value is None or value == "":
        return 0
    if not value.isdigit() or len(value) > 9:
        raise InvalidInputError(f"{what} must be a page number, got {value!r:.40}")
    return int(value)


@dataclass(frozen=True)
class Paged:
    """Where a page of a list is (0-based page, rows per page, total rows; see :func:`paged`)."""

    page: int
    per_page: int
    total: int
    """Rows in the whole list."""
    pages: int
    start: int
    """Index of the page's first row."""
    has_next: bool


def paged(page: int, per_page: int, total: int) -> Paged:
    """Page ``page`` of ``total`` rows, ``per_page`` rows each."""
    start = page * per_page
    return Paged(
        page, per_page, total, max(1, -(-total // per_page)), start, start + per_page < total
    )


# -- pending runs -------------------------------------------------------------------
class ShardOffsets:
    """How far each shard's window of the pending index earlier pages went."""

    def __init__(self, offsets: Mapping[int, int] | None = None) -> None:
        self.offsets = {shard: n for shard, n in (offsets or {}).items() if n}

    @classmethod
    def parse(cls, token: str | None, shards: int) -> ShardOffsets:
        """Offsets from a URL token (empty: the first page); InvalidInputError if malformed."""
        if not token:
            return cls()
        offsets: dict[int, int] = {}
        for part in token.split("."):
            shard, _, offset = part.partition(":")
            if not (shard.isdigit() and offset.isdigit()) or len(offset) > 9:
                raise InvalidInputError(f"not a page token: {token!r:.60}")
            if int(shard) >= shards:
                raise InvalidInputError(f"page token names shard {shard} of {shards}")
            offsets[int(shard)] = int(offset)
        return cls(offsets)

    def token(self) -> str:
        """The URL token of these offsets."""
        return ".".join(f"{shard}:{n}" for shard, n in sorted(self.offsets.items()))

    def get(self, shard: int) -> int:
        """The offset of one shard (0 when not given)."""
        return self.offsets.get(shard, 0)


@dataclass(frozen=True)
class Window:
    """Due times of the pending indexes, ``low`` to ``high`` (ZRANGEBYSCORE bounds)."""

    low: str
    high: str

    @classmethod
    def overdue(cls, now_ms: int) -> Window:
        """Runs whose earliest due time has passed (``due < now``)."""
        return cls("-inf", f"({now_ms}")

    @classmethod
    def soon(cls, now_ms: int, horizon_ms: int) -> Window:
        """Runs due from now to ``horizon_ms`` ahead."""
        return cls(str(now_ms), str(now_ms + horizon_ms))


def count_commands(core: StoreCore, window: Window) -> list[tuple[Any, ...]]:
    """``ZCOUNT`` of ``window`` in every shard's pending index (O(log n) each)."""
    return [("ZCOUNT", key, window.low, window.high) for key in core.keys.all_pending()]


def window_commands(
    core: StoreCore, window: Window, offsets: ShardOffsets, limit: int
) -> list[tuple[Any, ...]]:
    """One bounded ``ZRANGEBYSCORE`` per shard: ``limit + 1`` runs after its offset."""
    return [
        (
            "ZRANGEBYSCORE",
            key,
            window.low,
            window.high,
            "WITHSCORES",
            "LIMIT",
            offsets.get(s),
            limit + 1,
        )
        for s, key in enumerate(core.keys.all_pending())
    ]


@dataclass(frozen=True)
class PendingRow:
    """A run of a pending index with its earliest PENDING due time (server clock)."""

    run_id: str
    due_ms: int
    shard: int


def merge_window(
    replies: Sequence[Sequence[Any]], offsets: ShardOffsets, limit: int
) -> tuple[list[PendingRow], ShardOffsets | None]:
    """The page of a :func:`window_commands` reply, earliest due first, and the next page's offsets.

    The next offsets are None when this is the last page.
    """
    shards = [
        [PendingRow(run, due, shard) for run, due in score_pairs(reply)]
        for shard, reply in enumerate(replies)
    ]
    merged = list(heapq.merge(*shards, key=lambda row: (row.due_ms, row.run_id)))
    rows = merged[:limit]
    if len(merged) <= limit:
        return rows, None
    moved = dict(offsets.offsets)
    for row in rows:
        moved[row.shard] = moved.get(row.shard, 0) + 1
    return rows, ShardOffsets(moved)


def sum_counts(replies: Sequence[Any]) -> int:
    """The total of a list of integer replies (``ZCARD``, ``ZCOUNT``)."""
    return sum(int(reply) for reply in replies)


# -- findings -----------------------------------------------------------------------
def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return (int(ms), int(seq or 0))


def _is_stream_id(token: str) -> bool:
    """``ms-seq`` as Redis takes it: two numbers of at most 64 bits."""
    return _STREAM_ID.fullmatch(token) is not None and max(_id_key(token)) <= _MAX_ID_PART


@dataclass(frozen=True)
class FeedMark:
    """A place in the findings feed: events are ordered newest first by (stream id, shard)."""

    stream_id: str
    shard: int

    @classmethod
    def parse(cls, token: str | None, shards: int) -> FeedMark | None:
        """The mark of a URL token (None for the newest page); InvalidInputError if malformed."""
        if not token:
            return None
        stream_id, _, shard = token.partition("@")
        valid = _is_stream_id(stream_id) and _id_key(stream_id) != (0, 0)  # none is older
        if not valid or not shard.isdigit() or int(shard) >= shards:
            raise InvalidInputError(f"not a findings position: {token!r:.60}")
        return cls(stream_id, int(shard))

    def token(self) -> str:
        """The URL token of this mark."""
        return f"{self.stream_id}@{self.shard}"

    def end_for(self, shard: int) -> str:
        """The ``XREVRANGE`` end of ``shard`` to read only events older than this mark."""
        return self.stream_id if shard < self.shard else f"({self.stream_id}"


def feed_commands(core: StoreCore, before: FeedMark | None, count: int) -> list[tuple[Any, ...]]:
    """One ``XREVRANGE … COUNT count`` per shard, older than ``before`` (newest when None)."""
    return [
        ("XREVRANGE", key, "+" if before is None else before.end_for(s), "-", "COUNT", count)
        for s, key in enumerate(core.keys.all_findings())
    ]


@dataclass(frozen=True)
class RawEvent:
    """A stream entry as read, parsed into a :class:`Finding` only when a page shows it."""

    order: tuple[int, int, int]
    """(stream id ms, sequence, shard): newest first means largest first."""
    type: str
    fields: Any
    shard: int
    stream_id: str

    def finding(self) -> Finding:
        """The parsed event."""
        return parse_event(self.fields, shard=self.shard, stream_id=self.stream_id)

    @property
    def mark(self) -> FeedMark:
        """Its place in the feed."""
        return FeedMark(self.stream_id, self.shard)


def _raw(shard: int, entry_id: Any, fields: Any) -> RawEvent:
    sid = text(entry_id)
    kind = fields.get(b"type", fields.get("type", b""))
    return RawEvent((*_id_key(sid), shard), text(kind), fields, shard, sid)


def parse_feed(replies: Sequence[Sequence[Any]]) -> list[list[RawEvent]]:
    """The entries of a :func:`feed_commands` reply, per shard, newest first."""
    return [
        [_raw(s, entry_id, fields) for entry_id, fields in reply] for s, reply in enumerate(replies)
    ]


def count_types(replies: Sequence[Sequence[Any]]) -> dict[str, int]:
    """Events by type in a :func:`feed_commands` reply (no event is parsed beyond its type)."""
    seen = Counter(
        fields.get(b"type", fields.get("type")) for reply in replies for _, fields in reply
    )
    counts = {text(kind): n for kind, n in seen.items() if kind is not None}
    return {kind.value: counts.get(kind.value, 0) for kind in FindingType}


def oldest_ms(replies: Sequence[Sequence[Any]]) -> int | None:
    """The time (stream id) of the oldest event of a :func:`feed_commands` reply."""
    return min((_id_key(text(reply[-1][0]))[0] for reply in replies if reply), default=None)


def feed_page(
    per_shard: Sequence[Sequence[RawEvent]],
    count: int,
    types: Collection[FindingType],
    limit: int,
) -> tuple[list[Finding], FeedMark | None]:
    """Up to ``limit`` events of ``types`` (all when empty), newest first, and the next page's mark.

    Each shard was read ``count`` events deep. Past the oldest event read from
    a shard that had more, events of that shard may be unread, so the page stops
    there (short, but with a next mark); None when every stream was read to its end.
    """
    wanted = {t.value for t in types}
    horizon = max((events[-1].order for events in per_shard if len(events) >= count), default=None)
    merged = heapq.merge(*per_shard, key=lambda event: event.order, reverse=True)
    page: list[Finding] = []
    last: RawEvent | None = None
    for event in merged:
        if horizon is not None and event.order < horizon:
            break
        last = event
        if not wanted or event.type in wanted:
            page.append(event.finding())
            if len(page) == limit:
                break
    if last is None:
        return page, None
    more = horizon is not None or any(
        events and events[-1].order < last.order for events in per_shard
    )
    return page, (last.mark if more else None)


def positions_token(per_shard: Sequence[Sequence[RawEvent]]) -> str:
    """The newest stream id of every shard ("0" for an empty stream), for the live feed."""
    return ",".join(events[0].stream_id if events else "0" for events in per_shard)


def parse_positions(token: str | None, shards: int) -> dict[int, str] | str:
    """``since`` for ``iter_findings``: ids per shard from a token, or "$" when absent."""
    if not token:
        return "$"
    ids = token.split(",")
    if len(ids) != shards or not all(i == "0" or _is_stream_id(i) for i in ids):
        raise InvalidInputError(f"since must be one stream id per shard ({shards})")
    return dict(enumerate(ids))


def finding_types(values: Sequence[str]) -> frozenset[FindingType]:
    """Finding types from ``type`` query parameters (none: every type)."""
    try:
        return frozenset(FindingType(v) for v in values if v)
    except ValueError:
        raise InvalidInputError(
            f"type must be one of {', '.join(FindingType)}: {', '.join(values)[:60]!r}"
        ) from None


def command_call(commands: Sequence[tuple[Any, ...]], operation: str) -> CommandCall:
    """Read-only commands sent together (one pipeline)."""
    return CommandCall(tuple(commands), operation)
