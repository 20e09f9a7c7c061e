"""Contract: update_expectation_status walks the documented state machine, every edge."""

from __future__ import annotations

import itertools
import uuid

import pytest

from rac_store import (
    AuditExpectation,
    AuditStatus,
    AuditStore,
    InvalidTransitionError,
    create_domain_ack,
)

S = AuditStatus
ALLOWED = {
    (S.PENDING, S.ACKED),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.MISSING),
    (S.MISSING, S.ACKED),
    (S.MISSING, S.FAILED),
    (S.FAILED, S.ACKED),
}


def put_in(store: AuditStore, status: AuditStatus) -> uuid.UUID:
    """A run whose one expectation (d, a) is in ``status``, reached the ordinary way."""
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", "a", deadline_ms=60_000)])
    if status is S.ACKED:
        store.add_ack(run, create_domain_ack(run, "d", "a"))
    elif status is S.FAILED:
        store.add_ack(run, create_domain_ack(run, "d", "a", error="boom"))
    elif status is S.MISSING:
        store.update_expectation_status(run, "d", "a", S.MISSING)
    return run


def current(store: AuditStore, run: uuid.UUID) -> AuditExpectation:
    (exp,) = store.get_expectations(run)
    return exp


@pytest.mark.parametrize(("start", "target"), list(itertools.product(S, S)))
def test_every_edge(store: AuditStore, start: AuditStatus, target: AuditStatus) -> None:
    run = put_in(store, start)
    assert current(store, run).status is start
    if start is target or (start, target) in ALLOWED:
        assert store.update_expectation_status(run, "d", "a", target) is True
        exp = current(store, run)
        assert exp.status is target
        assert (exp.acked_at is None) == (target in (S.PENDING, S.MISSING))
        assert exp.late == (start is S.MISSING and target is not S.MISSING)
    else:
        with pytest.raises(InvalidTransitionError, match=f"{start.value} -> {target.value}"):
            store.update_expectation_status(run, "d", "a", target)
        assert current(store, run).status is start


def test_unknown_expectation_is_false(store: AuditStore) -> None:
    run = put_in(store, S.PENDING)
    assert store.update_expectation_status(run, "d", "other", S.ACKED) is False
    assert store.update_expectation_status(uuid.uuid4(), "d", "a", S.ACKED) is False
    assert store.load_from_redis(run)


def test_status_accepts_plain_strings(store: AuditStore) -> None:
    run = put_in(store, S.PENDING)
    assert store.update_expectation_status(run, "d", "a", "FAILED") is True
    assert current(store, run).status is S.FAILED


def test_leaving_pending_updates_the_index(store: AuditStore) -> None:
    run = put_in(store, S.PENDING)
    assert str(run) in store.get_pending_run_ids()
    store.update_expectation_status(run, "d", "a", S.MISSING)
    assert str(run) not in store.get_pending_run_ids()
