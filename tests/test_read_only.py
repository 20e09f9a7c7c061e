"""A store opened read-only: it never writes, never creates a store, and adopts the layout."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from rac_store import (
    AuditReconciler,
    AuditStore,
    LayoutMismatchError,
    ReadOnlyStoreError,
    StoreNotFoundError,
    create_domain_ack,
    create_run_expectations,
)

from .conftest import ACL_PASSWORD
from .support.redis_server import RedisServer
from .support.snapshot import snapshot

StoreFactory = Callable[..., AuditStore]


def _seed(factory: StoreFactory, **options: Any) -> uuid.UUID:
    writer = factory(**options)
    run = uuid.uuid4()
    writer.add_expectations(run, create_run_expectations(run))
    writer.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
    return run


def test_no_store_under_the_prefix_is_an_error_and_creates_nothing(
    store_factory: StoreFactory, raw_client: Any
) -> None:
    before = snapshot(raw_client)
    with pytest.raises(StoreNotFoundError, match="no store under prefix 'other'"):
        store_factory(prefix="other", read_only=True)  # a prefix the ACL user may read
    assert snapshot(raw_client) == before


def test_the_recorded_shard_count_is_adopted_unless_another_is_asked(
    store_factory: StoreFactory,
) -> None:
    run = _seed(store_factory, prefix="other", shards=64)
    reader = store_factory(prefix="other", read_only=True)
    assert reader.core.keys.shards == 64
    assert {e.key() for e in reader.get_expectations(run)} == {
        e.key() for e in create_run_expectations(run)
    }
    assert reader.get_pending_run_ids() == [str(run)]
    with pytest.raises(LayoutMismatchError, match="64 shards, 16 were asked"):
        store_factory(prefix="other", shards=16, read_only=True)


def test_every_write_is_refused_before_anything_is_sent(
    store_factory: StoreFactory, raw_client: Any
) -> None:
    run = _seed(store_factory)
    reader = store_factory(read_only=True)
    assert reader.read_only
    before = snapshot(raw_client)
    ack = create_domain_ack(run, "logs", "start_trace")
    writes = {
        "add_expectations": lambda: reader.add_expectations(run, create_run_expectations(run)),
        "add_ack": lambda: reader.add_ack(run, ack),
        "add_acks": lambda: reader.add_acks(run, [ack]),
        "update_expectation_status": lambda: reader.update_expectation_status(
            run, "logs", "start_trace", "MISSING"
        ),
        "clear_run": lambda: reader.clear_run(run),
    }
    for name, write in writes.items():
        with pytest.raises(ReadOnlyStoreError, match="opened read-only"):
            write()
        assert snapshot(raw_client) == before, name
    assert [a.id for a in reader.get_acks(run)] == [a.id for a in store_factory().get_acks(run)]
    assert reader.load_from_redis(run)


def test_the_reconciler_reads_but_does_not_record_on_a_read_only_store(
    store_factory: StoreFactory, raw_client: Any
) -> None:
    run = _seed(store_factory)
    store_factory().add_ack(run, create_domain_ack(run, "ghost", "drift"))
    rec = AuditReconciler(store_factory(read_only=True), metrics=False)
    before = snapshot(raw_client)
    assert rec.reconcile(run, record=False).drift_actions == [("ghost", "drift")]
    assert [p.run_id for p in rec.pending().runs] == [str(run)]
    with pytest.raises(ReadOnlyStoreError, match="record=True"):
        rec.reconcile(run)  # refused up front: recording a verdict writes
    with pytest.raises(ReadOnlyStoreError, match="sweep"):
        rec.sweep()  # refused up front, even with nothing due
    assert snapshot(raw_client) == before


@pytest.mark.redis_only
def test_the_inspector_user_opens_read_only_on_an_empty_server(
    redis_server: RedisServer, redis_client: redis.Redis, acl_users: dict[str, str]
) -> None:
    """Read-only needs no write permission: 'no store' rather than a Lua permission error."""
    login = {"username": acl_users["inspector"], "password": ACL_PASSWORD}
    with redis_server.client(**login) as client:
        with pytest.raises(StoreNotFoundError):
            AuditStore(client, read_only=True)
        assert redis_client.dbsize() == 0
        run = _seed(lambda **o: AuditStore(redis_client, **o))
        reader = AuditStore(client, read_only=True)
        assert len(reader.get_expectations(run)) == 4
