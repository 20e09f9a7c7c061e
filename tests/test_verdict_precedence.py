"""Verdict precedence, on snapshots built by hand: STALE > INCOMPLETE > IN_PROGRESS > COMPLETE."""

from __future__ import annotations

import uuid

import pytest

from rac_store import AuditExpectation, AuditStatus, ReconciliationStatus
from rac_store.core import LIVENESS_FLAG
from rac_store.reconciliation import RunSnapshot, verdict

RUN = uuid.UUID(int=7)
NOW = 10_000
P, A, F, M = AuditStatus.PENDING, AuditStatus.ACKED, AuditStatus.FAILED, AuditStatus.MISSING


def snapshot(*states: tuple[str, AuditStatus], drift: bool = False, live: str = "") -> RunSnapshot:
    """One expectation per (action, status); PENDING ones due after NOW; ``live`` the liveness
    action; ``drift`` adds an acked key that nothing declares."""
    expectations = []
    for action, status in states:
        exp = AuditExpectation(RUN, "d", action, 0)
        exp.status = status
        if action == live:
            exp.metadata = {LIVENESS_FLAG: True}
        expectations.append(exp)
    due = {("d", action): NOW + 1 for action, status in states if status is P}
    return RunSnapshot(str(RUN), expectations, due, [("z", "x")] if drift else [], 0, NOW)


CASES = {
    "everything at once: stale wins": (
        snapshot(("o", M), ("m", M), ("f", F), ("p", P), drift=True, live="o"),
        ReconciliationStatus.STALE,
    ),
    "failed beats pending": (snapshot(("f", F), ("p", P)), ReconciliationStatus.INCOMPLETE),
    "missing beats pending": (snapshot(("m", M), ("p", P)), ReconciliationStatus.INCOMPLETE),
    "drift beats pending": (snapshot(("p", P), drift=True), ReconciliationStatus.INCOMPLETE),
    "drift alone": (snapshot(("a", A), drift=True), ReconciliationStatus.INCOMPLETE),
    "a failed liveness check is not stale": (
        snapshot(("o", F), ("p", P), live="o"),
        ReconciliationStatus.INCOMPLETE,
    ),
    "pending only": (snapshot(("a", A), ("p", P)), ReconciliationStatus.IN_PROGRESS),
    "all acked": (snapshot(("a", A), ("b", A)), ReconciliationStatus.COMPLETE),
}


@pytest.mark.parametrize(("snap", "expected"), CASES.values(), ids=CASES.keys())
def test_verdict_precedence(snap: RunSnapshot, expected: ReconciliationStatus) -> None:
    assert verdict(snap).status is expected
