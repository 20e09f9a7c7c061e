"""What the benchmarks send: runs with declared expectations and the acks that answer them.

Every timed ``add_ack`` answers a PENDING expectation before its deadline (the
common case on a worker's hot path) unless a figure says otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from rac_store import AuditExpectation, AuditStore, DomainAck, create_domain_ack

DOMAIN = "bench"
DEADLINE_MS = 3_600_000


def action(index: int) -> str:
    """The action name of expectation ``index`` of a benchmark run."""
    return f"action_{index}"


def ack_for(run: uuid.UUID, index: int) -> DomainAck:
    """A successful ack of action ``index`` of ``run``."""
    return create_domain_ack(run, DOMAIN, action(index))


def expectations_for(run: uuid.UUID, first: int, count: int) -> list[AuditExpectation]:
    """Expectations ``first .. first + count - 1`` of ``run``, due in an hour."""
    return [
        AuditExpectation(run, DOMAIN, action(i), DEADLINE_MS) for i in range(first, first + count)
    ]


@dataclass(frozen=True)
class PendingAck:
    """An ack and the run it answers a PENDING expectation of."""

    run_id: str
    ack: DomainAck


def declare(store: AuditStore, run: uuid.UUID, first: int, count: int) -> None:
    """Declare expectations ``first ..`` of ``run`` in batches of at most 1,000."""
    for start in range(first, first + count, 1000):
        store.add_expectations(run, expectations_for(run, start, min(1000, first + count - start)))


def pending_acks(store: AuditStore | None, count: int, per_run: int = 50) -> list[PendingAck]:
    """``count`` acks over fresh runs of ``per_run`` expectations, one ack each.

    The expectations are declared in ``store`` (none when it is None: the old
    design has no state machine, so its acks need none).
    """
    acks: list[PendingAck] = []
    while len(acks) < count:
        run = uuid.uuid4()
        size = min(per_run, count - len(acks))
        if store is not None:
            declare(store, run, 0, size)
        acks.extend(PendingAck(str(run), ack_for(run, i)) for i in range(size))
    return acks


def chunks(items: list[PendingAck], size: int) -> Iterator[list[PendingAck]]:
    """Consecutive slices of ``items`` of ``size`` (the last may be shorter)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
