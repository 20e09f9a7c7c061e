"""Contract: the pending index, TTLs on every run key, and clear_run leaving nothing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from rac_store import AuditExpectation, AuditStore, create_domain_ack, create_run_expectations
from rac_store.errors import InvalidInputError, LayoutMismatchError

from .support.snapshot import keys_with


def declare(store: AuditStore, deadline_ms: int, actions: int = 2) -> uuid.UUID:
    run = uuid.uuid4()
    store.add_expectations(
        run, [AuditExpectation(run, "d", f"a{i}", deadline_ms + i) for i in range(actions)]
    )
    return run


def test_run_is_pending_until_every_expectation_leaves_pending(store: AuditStore) -> None:
    run = declare(store, 60_000)
    assert store.get_pending_run_ids() == [str(run)]
    store.add_ack(run, create_domain_ack(run, "d", "a0"))
    assert store.get_pending_run_ids() == [str(run)]
    store.add_ack(run, create_domain_ack(run, "d", "a1", error="x"))
    assert store.get_pending_run_ids() == []


def test_pending_is_ordered_by_earliest_due_across_shards(store: AuditStore) -> None:
    runs = [declare(store, deadline) for deadline in (50_000, 10_000, 30_000, 20_000, 40_000)]
    expected = [str(runs[i]) for i in (1, 3, 2, 4, 0)]
    assert store.get_pending_run_ids() == expected
    assert store.get_pending_run_ids(limit=2) == expected[:2]
    assert store.get_pending_run_ids(limit=0) == []
    shards = {store.core.keys.shard_of(str(r)) for r in runs}
    assert len(shards) > 1  # the merge really spans shards (crc32 spreads five runs)


def test_pending_index_score_follows_the_earliest_pending(
    store: AuditStore, raw_client: Any
) -> None:
    run = declare(store, 10_000)
    key = store.core.keys.for_run(str(run)).pending
    first = raw_client.zscore(key, str(run))
    store.add_ack(run, create_domain_ack(run, "d", "a0"))
    second = raw_client.zscore(key, str(run))
    assert second == first + 1  # a1 is due 1 ms after a0


def test_due_before_uses_server_time(store: AuditStore) -> None:
    soon = declare(store, 0)
    later = declare(store, 3_600_000)
    time.sleep(0.01)
    now = store.server_time_ms()
    assert store.get_pending_run_ids(due_before=now) == [str(soon)]
    assert store.get_pending_run_ids(due_before=now + 7_200_000) == [str(soon), str(later)]
    with pytest.raises(InvalidInputError):
        store.get_pending_run_ids(due_before="now")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        store.get_pending_run_ids(limit=-1)


def test_every_run_key_has_a_ttl_refreshed_by_writes(store_factory: Any, raw_client: Any) -> None:
    store = store_factory(ttl_seconds=100)
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    store.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
    store.add_ack(run, create_domain_ack(run, "x", "drift"))
    keys = keys_with(raw_client, str(run))
    assert len(keys) == 5
    latest_deadline = max(e.deadline_ms for e in create_run_expectations(run))
    for key in keys:  # ttl_seconds after the latest deadline (docs/reliability.md)
        assert 100_000 < raw_client.pttl(key) <= 100_000 + latest_deadline
        raw_client.pexpire(key, 5_000)
    store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
    for key in keys:
        assert raw_client.pttl(key) > 5_000


def test_clear_run_leaves_nothing(store: AuditStore, raw_client: Any) -> None:
    run = declare(store, 60_000)
    store.add_acks(run, [create_domain_ack(run, "d", "a0"), create_domain_ack(run, "x", "y")])
    assert keys_with(raw_client, str(run))
    store.clear_run(run)
    assert keys_with(raw_client, str(run)) == []
    for key in store.core.keys.all_pending():
        assert raw_client.zscore(key, str(run)) is None
    assert store.get_pending_run_ids() == []


def test_every_key_shares_its_runs_hash_tag(store: AuditStore, raw_client: Any) -> None:
    run = declare(store, 60_000)
    store.add_ack(run, create_domain_ack(run, "d", "a0"))
    tag = f"{{{store.core.keys.shard_of(str(run))}}}"
    for key in keys_with(raw_client, str(run)):
        assert key.decode().split(":")[1] == tag


def test_shard_count_mismatch_is_refused(store_factory: Any) -> None:
    store_factory(shards=16)
    with pytest.raises(LayoutMismatchError, match="stored=16 requested=8"):
        store_factory(shards=8)
    store_factory(shards=8, prefix="other")  # another prefix is another store


@pytest.mark.parametrize("shards", [0, 3, 12, 32768, True])
def test_bad_shard_counts(store_factory: Any, shards: Any) -> None:
    with pytest.raises(InvalidInputError):
        store_factory(shards=shards)
