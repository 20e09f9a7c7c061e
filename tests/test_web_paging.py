"""The dashboard's bounded pages, sans-I/O: every row once, in order, whatever the shards hold.

The views are driven here with a sync store's ``execute`` (they are generators of
read calls, like the reconciler's steps), on the embedded server.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from rac_store import AuditExpectation, AuditStore, InvalidInputError
from rac_store.embedded import create_embedded_client
from rac_store.models import FindingType
from rac_store.reconciliation import run_steps
from rac_store.web import paging, views


@pytest.fixture
def store() -> AuditStore:
    return AuditStore(create_embedded_client(), shards=4, metrics=False)


def _event(store: AuditStore, shard: int, stream_id: str, kind: str, run: str = "r") -> None:
    fields = {"type": kind, "run_id": run, "at_ms": stream_id.partition("-")[0], "source": "test"}
    store.client.xadd(store.core.keys.findings(shard), fields, id=stream_id)


def _all_pages(store: AuditStore, **query: Any) -> list[tuple[str, int, str]]:
    seen: list[tuple[str, int, str]] = []
    before = None
    for _ in range(100):
        page = run_steps(
            views.findings_steps(store.core, views.FindingsQuery(before=before, **query)),
            store.execute,
        )
        seen += [(f.stream_id or "", f.shard or 0, f.type.value) for f in page.findings]
        before = page.next
        if before is None:
            return seen
    raise AssertionError("the feed never ended")


def test_the_feed_shows_every_event_once_even_with_equal_ids_in_many_shards(
    store: AuditStore,
) -> None:
    written = []
    for ms in (1000, 1001):
        for seq in range(3):
            for shard in range(4):  # the same id in every shard
                _event(store, shard, f"{ms}-{seq}", "MISSING")
                written.append((f"{ms}-{seq}", shard, "MISSING"))
    for limit in (1, 2, 5, 7, 24, 25):
        seen = _all_pages(store, limit=limit)
        assert sorted(seen) == sorted(written), limit
        assert seen == sorted(seen, key=_order, reverse=True), limit


def test_a_filtered_feed_skips_what_it_does_not_want_and_still_ends(store: AuditStore) -> None:
    # shard 0: many COMPLETE events, newer than everything else; the STALE ones are older
    for i in range(300):
        _event(store, 0, f"{5000 + i}-0", "COMPLETE")
    wanted = [(f"{100 + i}-0", 1 + i % 3, "STALE") for i in range(9)]
    for stream_id, shard, kind in wanted:
        _event(store, shard, stream_id, kind)
    _event(store, 2, "4000-0", "MISSING")
    seen = _all_pages(store, types=frozenset({FindingType.STALE}), limit=4)
    assert sorted(seen) == sorted(wanted)
    both = _all_pages(store, types=frozenset({FindingType.STALE, FindingType.MISSING}), limit=4)
    assert sorted(both) == sorted([*wanted, ("4000-0", 2, "MISSING")])


def test_overdue_pages_follow_each_shards_offset(store: AuditStore) -> None:
    runs = []
    for _ in range(17):
        run = uuid.uuid4()
        store.add_expectations(run, [AuditExpectation(run, "d", "a", 0)])
        runs.append(str(run))
    time.sleep(0.01)  # every due time (now + 0 ms) is in the past
    token, seen = None, []
    while True:
        query = views.OverviewQuery(overdue=token, limit=4)
        page = run_steps(views.overview_steps(store.core, query), store.execute)
        assert page.overdue.total == 17 and page.pending_total == 17
        seen += [(row.due_ms, row.run_id) for row in page.overdue.rows]
        token = page.overdue.next
        if token is None:
            break
        assert paging.ShardOffsets.parse(token, 4).token() == token
    assert seen == sorted(seen) and sorted(r for _, r in seen) == sorted(runs)


@pytest.mark.parametrize(
    ("parse", "token"),
    [
        (paging.ShardOffsets.parse, "1:2.x"),
        (paging.ShardOffsets.parse, "9:1"),  # no shard 9 of 4
        (paging.FeedMark.parse, "12-0"),
        (paging.FeedMark.parse, "12-0@4"),
        (paging.FeedMark.parse, "<b>@0"),
        (paging.parse_positions, "0,0,0"),
        (paging.parse_positions, "0,0,0,$"),
    ],
)
def test_malformed_tokens_are_refused(parse: Any, token: str) -> None:
    with pytest.raises(InvalidInputError):
        parse(token, 4)


def test_page_sizes_and_numbers() -> None:
    assert paging.page_size(None) == paging.DEFAULT_PAGE
    assert paging.page_size("200") == 200
    for bad in ("0", "201", "-1", "1e3", "x"):
        with pytest.raises(InvalidInputError):
            paging.page_size(bad)
    assert paging.page_number("3", "p") == 3
    with pytest.raises(InvalidInputError):
        paging.page_number("1234567890", "p")
    assert paging.paged(2, 25, 60) == paging.Paged(2, 25, 60, 3, 50, False)
    assert paging.paged(0, 25, 0).pages == 1


def _order(row: tuple[str, int, str]) -> tuple[int, int, int]:
    ms, seq = row[0].split("-")
    return (int(ms), int(seq), row[1])
