"""The dashboard's pages as data ("view models"), built sans-I/O from the store's replies.

Each page is a generator of steps, like the reconciler's operations
(:mod:`rac_store.reconciliation`): it yields the read calls it needs and receives
their replies, then returns a frozen dataclass. The HTTP layer (:mod:`rac_store.web.app`)
drives it with an async store and renders the result as HTML (a template) or as
JSON (:func:`as_json`): both twins come from the same object. Nothing here writes:
every call is a plain read or the read-only ``read_run`` script.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..core import StoreCore, is_liveness, parse_acks, parse_server_time
from ..models import (
    AuditStatus,
    DomainAck,
    Finding,
    FindingType,
    ReconciliationResult,
)
from ..reconciliation import RunSnapshot, Steps, snapshot_steps, verdict
from ..validation import canonical_run_id
from . import paging
from .paging import FeedMark, Paged, PendingRow, ShardOffsets, Window, paged

SOON_MS = 10 * 60 * 1000
"""How far ahead "soon due" looks (10 minutes)."""
RECENT_PER_SHARD = 50
"""Events read from each shard's stream for the overview's counts."""
LATEST = 15
"""Findings the overview lists."""


# -- overview -----------------------------------------------------------------------
@dataclass(frozen=True)
class PendingSection:
    """Runs of one due-time window of the pending indexes, one page of them."""

    name: str
    """``overdue`` or ``soon``: the query parameter that pages this section."""
    total: int
    """Every run in the window (``ZCOUNT`` of each shard)."""
    rows: list[PendingRow]
    next: str | None
    """The token of the next page (None: this is the last)."""


@dataclass(frozen=True)
class OverviewPage:
    """``/``: counts by finding type, overdue and soon-due runs, the latest findings."""

    now_ms: int
    prefix: str
    shards: int
    pending_total: int
    overdue: PendingSection
    soon: PendingSection
    soon_ms: int
    counts: dict[str, int]
    """Findings by type among the events counted."""
    counted: int
    """Events counted: the last ``recent_per_shard`` of every shard's stream."""
    recent_per_shard: int
    counted_since_ms: int | None
    """Time of the oldest event counted (None: the streams are empty)."""
    latest: list[Finding]
    latest_next: str | None
    """Where the findings page goes on after the latest ones (None: nothing older)."""


@dataclass(frozen=True)
class OverviewQuery:
    """What an overview request asks for: the page of each section and its size."""

    overdue: str | None = None
    soon: str | None = None
    limit: int = paging.DEFAULT_PAGE
    soon_ms: int = SOON_MS


def overview_steps(core: StoreCore, query: OverviewQuery) -> Steps[OverviewPage]:
    """Two round trips: the server's clock, then one pipeline of bounded reads per shard."""
    shards = core.keys.shards
    overdue_at = ShardOffsets.parse(query.overdue, shards)
    soon_at = ShardOffsets.parse(query.soon, shards)
    now = parse_server_time((yield core.server_time("web overview")))
    overdue, soon = Window.overdue(now), Window.soon(now, query.soon_ms)
    recent = max(RECENT_PER_SHARD, LATEST + 1)
    parts = [
        [("ZCARD", key) for key in core.keys.all_pending()],
        paging.count_commands(core, overdue),
        paging.count_commands(core, soon),
        paging.window_commands(core, overdue, overdue_at, query.limit),
        paging.window_commands(core, soon, soon_at, query.limit),
        paging.feed_commands(core, None, recent),
    ]
    replies = yield paging.command_call([c for part in parts for c in part], "web overview")
    cards, overdue_n, soon_n, overdue_rows, soon_rows, feed = (
        replies[i * shards : (i + 1) * shards] for i in range(len(parts))
    )
    shown = LATEST + 1  # each shard's newest LATEST + 1 events hold the latest LATEST
    events = paging.parse_feed([reply[:shown] for reply in feed])
    latest, latest_next = paging.feed_page(events, shown, (), LATEST)
    return OverviewPage(
        now_ms=now,
        prefix=core.keys.prefix,
        shards=shards,
        pending_total=paging.sum_counts(cards),
        overdue=_section("overdue", overdue_n, overdue_rows, overdue_at, query.limit),
        soon=_section("soon", soon_n, soon_rows, soon_at, query.limit),
        soon_ms=query.soon_ms,
        counts=paging.count_types(feed),
        counted=sum(map(len, feed)),
        recent_per_shard=recent,
        counted_since_ms=paging.oldest_ms(feed),
        latest=latest,
        latest_next=latest_next.token() if latest_next else None,
    )


def _section(
    name: str, counts: list[Any], rows: list[Any], offsets: ShardOffsets, limit: int
) -> PendingSection:
    page, following = paging.merge_window(rows, offsets, limit)
    token = following.token() if following is not None else None
    return PendingSection(name, paging.sum_counts(counts), page, token)


# -- findings -----------------------------------------------------------------------
@dataclass(frozen=True)
class FindingsQuery:
    """What a findings request asks for: types (none: all), where to start, how many."""

    types: frozenset[FindingType] = frozenset()
    before: str | None = None
    limit: int = paging.DEFAULT_PAGE


@dataclass(frozen=True)
class FindingsPage:
    """``/findings``: one page of the feed, newest first, and where the live feed starts."""

    now_ms: int
    types: list[str]
    """The types shown (empty: all)."""
    findings: list[Finding]
    next: str | None
    """The token of the next (older) page; None when nothing older was read."""
    live_since: str | None
    """Stream positions for the live feed (the newest page only)."""
    shards: int


def findings_steps(core: StoreCore, query: FindingsQuery) -> Steps[FindingsPage]:
    """Two round trips: the server's clock, one ``XREVRANGE`` per shard."""
    before = FeedMark.parse(query.before, core.keys.shards)
    count = query.limit + 1 if not query.types else max(query.limit + 1, paging.FILTER_SCAN)
    now = parse_server_time((yield core.server_time("web findings")))
    replies = yield paging.command_call(paging.feed_commands(core, before, count), "web findings")
    events = paging.parse_feed(replies)
    page, following = paging.feed_page(events, count, query.types, query.limit)
    return FindingsPage(
        now_ms=now,
        types=sorted(t.value for t in query.types),
        findings=page,
        next=following.token() if following else None,
        live_since=paging.positions_token(events) if before is None else None,
        shards=core.keys.shards,
    )


# -- one run ------------------------------------------------------------------------
@dataclass(frozen=True)
class ExpectationRow:
    """One expectation of a run as the page shows it."""

    domain: str
    action: str
    status: str
    deadline_ms: int
    due_ms: int | None
    """Due time while PENDING (server clock)."""
    overdue: bool
    acked_at: str | None
    """When it was acked (server clock, ISO 8601)."""
    late: bool
    liveness: bool
    """Its absence makes the run STALE."""
    created_at: str
    metadata: dict[str, Any]
    """As declared (``is_liveness_check`` and anything the orchestrator added)."""


@dataclass(frozen=True)
class RunPage:
    """``/runs/<id>``: a run's expectations, acks, drift, and its two verdicts."""

    run_id: str
    shard: int
    now_ms: int
    """Server time of the snapshot."""
    verdict: ReconciliationResult
    """``reconcile(run_id, record=False)``: the verdict now."""
    final_verdict: ReconciliationResult
    """The verdict if the run ended now (every PENDING expectation missing)."""
    by_status: dict[str, int]
    expectations: list[ExpectationRow]
    expectations_page: Paged
    drift: list[tuple[str, str]]
    acks: list[AckRow]
    acks_page: Paged


@dataclass(frozen=True)
class RunQuery:
    """What a run request asks for: the page of expectations and of acks, and their size."""

    expectations_page: int = 0
    acks_page: int = 0
    limit: int = paging.DEFAULT_PAGE


@dataclass(frozen=True)
class AckRow:
    """One ack of a run, with its place in arrival order."""

    position: int
    """1 for the first ack the run received."""
    id: str
    """The ack's own id (duplicates of it were never stored)."""
    domain: str
    action: str
    status: str
    """SUCCESS, FAILED or ROLLED_BACK, as the worker reported it."""
    created_at: str
    """When the worker made the ack (its clock, ISO 8601)."""
    result_id: str | None
    error: str | None
    """The worker's error text (a FAILED ack)."""
    rolled_back: bool
    rollback_reason: str | None
    """Why the action was undone (a rolled-back ack)."""
    metadata: dict[str, Any]


def run_steps(core: StoreCore, run_id: str, query: RunQuery) -> Steps[RunPage]:
    """One ``read_run`` (RunNotFoundError for an unknown run), then one ``LRANGE`` of acks."""
    run = canonical_run_id(run_id)
    snapshot = yield from snapshot_steps(core, run)
    acks_at = paged(query.acks_page, query.limit, snapshot.acks_count)
    acks: list[DomainAck] = []
    if acks_at.start < acks_at.total:
        key = core.keys.for_run(run).acks
        last = acks_at.start + acks_at.per_page - 1
        reply = yield paging.command_call([("LRANGE", key, acks_at.start, last)], "web run")
        acks = parse_acks(reply)
    exps_at = paged(query.expectations_page, query.limit, len(snapshot.expectations))
    shown = snapshot.expectations[exps_at.start : exps_at.start + exps_at.per_page]
    by_status = Counter(exp.status.value for exp in snapshot.expectations)
    return RunPage(
        run_id=run,
        shard=core.keys.shard_of(run),
        now_ms=snapshot.now_ms,
        verdict=verdict(snapshot),
        final_verdict=verdict(snapshot, final=True),
        by_status={status.value: by_status.get(status.value, 0) for status in AuditStatus},
        expectations=[_expectation_row(snapshot, exp) for exp in shown],
        expectations_page=exps_at,
        drift=list(snapshot.drift),
        acks=[_ack_row(acks_at.start + i + 1, ack) for i, ack in enumerate(acks)],
        acks_page=acks_at,
    )


def _expectation_row(snapshot: RunSnapshot, exp: Any) -> ExpectationRow:
    domain, action = exp.key()
    return ExpectationRow(
        domain=domain,
        action=action,
        status=exp.status.value,
        deadline_ms=exp.deadline_ms,
        due_ms=snapshot.due_ms.get(exp.key()),
        overdue=snapshot.is_overdue(exp),
        acked_at=_iso(exp.acked_at),
        late=exp.late,
        liveness=is_liveness(exp),
        created_at=_iso(exp.created_at) or "",
        metadata=dict(exp.metadata),
    )


def _ack_row(position: int, ack: DomainAck) -> AckRow:
    domain, action = ack.key()
    return AckRow(
        position=position,
        id=str(ack.id),
        domain=domain,
        action=action,
        status=str(ack.status),
        created_at=_iso(ack.created_at) or "",
        result_id=ack.result_id,
        error=ack.error,
        rolled_back=ack.rolled_back,
        rollback_reason=ack.rollback_reason,
        metadata=dict(ack.metadata),
    )


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat(timespec="milliseconds"))


# -- health -------------------------------------------------------------------------
@dataclass(frozen=True)
class Health:
    """``/healthz``: the store answers; its server time and layout."""

    status: str
    now_ms: int
    prefix: str
    shards: int
    mode: str
    read_only: bool = field(default=True)


def health_steps(core: StoreCore, mode: str) -> Steps[Health]:
    """One ``TIME``."""
    now = parse_server_time((yield core.server_time("web health")))
    return Health("ok", now, core.keys.prefix, core.keys.shards, mode)


@dataclass(frozen=True)
class PendingGauges:
    """Runs in the pending indexes and how many are overdue (for ``/metrics``)."""

    pending: int
    overdue: int


def gauges_steps(core: StoreCore) -> Steps[PendingGauges]:
    """``TIME``, then ``ZCARD`` and ``ZCOUNT`` of every shard."""
    now = parse_server_time((yield core.server_time("web metrics")))
    cards = [("ZCARD", key) for key in core.keys.all_pending()]
    counts = paging.count_commands(core, Window.overdue(now))
    replies = yield paging.command_call([*cards, *counts], "web metrics")
    shards = core.keys.shards
    return PendingGauges(paging.sum_counts(replies[:shards]), paging.sum_counts(replies[shards:]))


def as_json(page: Any) -> Any:
    """A page as JSON-ready builtins (the JSON twin of the HTML page; UUIDs as text)."""
    return msgspec.to_builtins(page)
