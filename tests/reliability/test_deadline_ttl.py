"""Issue 15, item 4: a deadline never outlives its run's keys.

A declaration extends the run's TTL to ``ttl_seconds`` after its latest deadline, and
no later write shortens it (docs/reliability.md, "TTL and deadlines"). Against a
real redis-server with a 1 s TTL and deadlines of a few seconds: an ack before the
deadline is never DRIFT, the sweep still finds the missed deadline, and a run whose
keys expire while it is pending (nobody swept for longer than the TTL after its
deadline) is always reported EXPIRED — also when an ack came after the keys expired.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from rac_store import (
    AuditExpectation,
    AuditReconciler,
    AuditStatus,
    AuditStore,
    FindingType,
    create_domain_ack,
)
from rac_store.findings import parse_event

from ..conftest import SYNC_BACKENDS

pytestmark = pytest.mark.redis_only

TTL_SECONDS = 1
DEADLINE_MS = 4_000


def _pttls(client: Any, store: AuditStore, run: uuid.UUID) -> list[int]:
    return [int(client.pttl(key)) for key in store.core.keys.for_run(str(run)).run_keys]


def _events(client: Any, store: AuditStore, run: uuid.UUID) -> list[FindingType]:
    stream = store.core.keys.for_run(str(run)).findings
    found = [parse_event(fields) for _, fields in client.xrange(stream)]
    return [f.type for f in found if f.run_id == str(run)]


@pytest.mark.parametrize("backend", ["redis", "redis-acl"], indirect=True)
def test_a_deadline_longer_than_the_ttl_keeps_the_run(store_factory: Any, raw_client: Any) -> None:
    store = store_factory(ttl_seconds=TTL_SECONDS)
    run = uuid.uuid4()
    exps = [
        AuditExpectation(run, "d", "early", 100),
        AuditExpectation(run, "d", "late", DEADLINE_MS),
        AuditExpectation(run, "d", "never", DEADLINE_MS),
    ]
    assert store.add_expectations(run, exps) == 3
    declared = time.monotonic()
    store.add_ack(run, create_domain_ack(run, "x", "drift"))  # makes the acks keys too
    ttls = _pttls(raw_client, store, run)
    # ttl_seconds after the latest deadline, on every key of the run
    assert all(DEADLINE_MS < ttl <= DEADLINE_MS + TTL_SECONDS * 1000 for ttl in ttls), ttls
    # writes with the plain TTL (a status move, a sweep, acks) never shorten it
    time.sleep(0.2)
    store.update_expectation_status(run, "d", "early", AuditStatus.FAILED)
    AuditReconciler(store).sweep()
    store.add_ack(run, create_domain_ack(run, "x", "drift-again"))
    assert min(_pttls(raw_client, store, run)) > TTL_SECONDS * 1000
    time.sleep(TTL_SECONDS + 0.3)  # the plain TTL has run out; the deadline has not
    assert store.add_ack(run, create_domain_ack(run, "d", "late")) == "RECORDED"
    time.sleep(max(0.0, declared + DEADLINE_MS / 1000 + 0.1 - time.monotonic()))
    report = AuditReconciler(store).sweep()  # past the deadline: "never" is missing
    assert [(f.domain, f.action) for f in report.missing] == [("d", "never")]
    statuses = {e.action: e.status for e in store.get_expectations(run)}
    assert statuses == {"early": "FAILED", "late": "ACKED", "never": "MISSING"}
    print(f"\n[deadline > ttl] TTLs after declaring: {ttls} ms (ttl {TTL_SECONDS} s)")


@pytest.mark.parametrize("backend", SYNC_BACKENDS, indirect=True)
@pytest.mark.parametrize("ack_after_expiry", [False, True])
def test_a_run_that_expires_while_pending_is_reported_expired(
    store_factory: Any, raw_client: Any, ack_after_expiry: bool
) -> None:
    store = store_factory(ttl_seconds=TTL_SECONDS)
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", "a", 200)])
    assert store.get_pending_run_ids() == [str(run)]
    time.sleep(0.2 + TTL_SECONDS + 0.4)  # nobody swept: deadline + ttl passed, keys gone
    assert not store.load_from_redis(run)
    if ack_after_expiry:  # an ack now is drift, and makes some of the run's keys anew
        assert store.add_ack(run, create_domain_ack(run, "d", "a")) == "DRIFT"
    report = AuditReconciler(store).sweep()
    assert [f.run_id for f in report.expired] == [str(run)]
    assert _events(raw_client, store, run) == [FindingType.EXPIRED]
    assert store.get_pending_run_ids() == []
    assert AuditReconciler(store).sweep().expired == []  # reported once
