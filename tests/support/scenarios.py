"""Randomized audit scenarios with known ground truth, for the reconciler.

Each run declares a few expectations; each expectation gets a *fate* (acked in
time, acked late, failed, failed then retried, missing, still pending, acked
before it was declared ...), and some runs get drift acks and re-sent
(duplicate) acks. The plan says which acks are sent in which phase, and
:meth:`RunPlan.truth` says what the reconciler must find, independently of the
store: nothing here reads the store.

Phases, in order (:data:`PHASES`):

``early``    acks sent before the run's expectations are declared (out of order)
``declare``  the expectations are declared (not acks; done by the driver)
``main``     in-time acks, failures, retries, drift, duplicates within a batch
``overdue``  acks sent after their deadline but before the sweep (late, PENDING)
``sweep``    the deadline sweep (done by the driver)
``late``     acks sent after the sweep marked them MISSING, and re-sent acks

Short deadlines are 0 ms and long ones 10 minutes, so that what is overdue
depends only on the order of the phases (the driver waits a little before
``overdue``), never on how fast a machine is.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from rac_store import (
    AuditExpectation,
    DomainAck,
    ReconciliationStatus,
    create_domain_ack,
)

ActionKey = tuple[str, str]

SHORT_MS = 0
LONG_MS = 600_000
PHASES = ("early", "main", "overdue", "late")

FATES = (
    "ok",  # acked in time
    "failed",  # acked with an error: a FAILED finding
    "retried",  # FAILED, then a successful retry: ACKED
    "missing",  # never acked, deadline passed: MISSING (marked by the sweep)
    "pending",  # never acked, deadline not passed: pending, not a finding
    "late",  # acked after the sweep marked it MISSING: ACKED, late
    "overdue",  # acked after its deadline, before the sweep: ACKED, late
    "early",  # acked before it was declared: ACKED
    "early_failed",  # acked with an error before it was declared: FAILED
)
_SHORT_FATES = {"missing", "late", "overdue"}
_SENDS: dict[str, list[tuple[str, str | None]]] = {
    "ok": [("main", None)],
    "failed": [("main", "boom")],
    "retried": [("main", "transient"), ("main", None)],
    "missing": [],
    "pending": [],
    "late": [("late", None)],
    "overdue": [("overdue", None)],
    "early": [("early", None)],
    "early_failed": [("early", "before declaration")],
}
"""The acks each fate sends: (phase, error or None), in order."""

DOMAINS = ("incidents", "policies", "logs", "billing", "search")
ACTIONS = ("create", "evaluate", "start", "complete", "index", "notify")
LIVENESS = ("orchestrator", "finalize_run")


@dataclass(frozen=True)
class Truth:
    """What the reconciler must report for one run."""

    missing: list[ActionKey]
    failed: list[ActionKey]
    drift: list[ActionKey]
    pending: list[ActionKey]
    late: list[ActionKey]
    stale: bool
    status: ReconciliationStatus
    expectations: int
    acks: int
    swept: list[ActionKey]
    """Expectations the sweep marks MISSING (unacked when it runs)."""
    complete_events: int
    """COMPLETE events the store appends for the run (0 or 1 in these plans)."""


@dataclass
class RunPlan:
    """One run: its expectations, the fate of each, and the acks of each phase."""

    run_id: uuid.UUID
    expectations: list[AuditExpectation]
    fates: dict[ActionKey, str]
    drift: dict[ActionKey, bool]
    """Undeclared pairs acked, and whether their (last) ack succeeded."""
    acks: dict[str, list[DomainAck]] = field(default_factory=lambda: {p: [] for p in PHASES})

    def truth(self) -> Truth:
        """The findings, derived from the plan alone."""

        def having(*fates: str) -> list[ActionKey]:
            return sorted(k for k, fate in self.fates.items() if fate in fates)

        missing = having("missing")
        failed = having("failed", "early_failed")
        pending = having("pending")
        drift = sorted(self.drift)
        stale = self.fates.get(LIVENESS) == "missing"
        if stale:
            status = ReconciliationStatus.STALE
        elif missing or failed or drift:
            status = ReconciliationStatus.INCOMPLETE
        elif pending:
            status = ReconciliationStatus.IN_PROGRESS
        else:
            status = ReconciliationStatus.COMPLETE
        ids = {ack.id for phase in PHASES for ack in self.acks[phase]}
        return Truth(
            missing=missing,
            failed=failed,
            drift=drift,
            pending=pending,
            late=having("late", "overdue"),
            stale=stale,
            status=status,
            expectations=len(self.expectations),
            acks=len(ids),
            swept=having("missing", "late"),
            complete_events=1 if status is ReconciliationStatus.COMPLETE else 0,
        )


def _ack(run: uuid.UUID, key: ActionKey, error: str | None = None) -> DomainAck:
    return create_domain_ack(run, key[0], key[1], error=error)


def plan_run(rng: random.Random) -> RunPlan:
    """One random run."""
    run = uuid.UUID(int=rng.getrandbits(128), version=4)
    pairs = [(d, a) for d in DOMAINS for a in ACTIONS]
    rng.shuffle(pairs)
    declared = pairs[: rng.randint(1, 5)]
    if rng.random() < 0.6:
        declared.append(LIVENESS)
    fates = {key: rng.choice(FATES) for key in declared}
    expectations = [
        AuditExpectation(
            run,
            key[0],
            key[1],
            SHORT_MS if fates[key] in _SHORT_FATES else LONG_MS,
            metadata={"is_liveness_check": True} if key == LIVENESS else {},
        )
        for key in declared
    ]
    drift = {key: rng.random() < 0.7 for key in pairs[6 : 6 + rng.choice((0, 0, 0, 1, 2))]}
    plan = RunPlan(run, expectations, fates, drift)
    acks = plan.acks
    for key, fate in fates.items():
        for phase, error in _SENDS[fate]:
            acks[phase].append(_ack(run, key, error))
    # Drift goes with the run's first acks, so that a run is never clean for a
    # moment and then not (the COMPLETE event count stays exact).
    first = "early" if acks["early"] else "main"
    for key, ok in drift.items():
        acks[first].append(_ack(run, key, error=None if ok else "undeclared and failed"))
    for phase in ("early", "main"):
        rng.shuffle(acks[phase])
        _order_retries(acks[phase])
    before_main = acks["early"] + acks["main"]
    if before_main and rng.random() < 0.4:
        acks["main"].append(rng.choice(before_main))  # a duplicate in the batch or of an early ack
    sent = [a for phase in PHASES for a in acks[phase]]
    if sent and rng.random() < 0.4:
        acks["late"].append(rng.choice(sent))  # re-delivered after everything
    return plan


def _order_retries(batch: list[DomainAck]) -> None:
    """Keep a retried action's failed ack before its successful one (shuffle-safe)."""
    for key in {a.key() for a in batch}:
        positions = [i for i, a in enumerate(batch) if a.key() == key]
        ordered = sorted((batch[i] for i in positions), key=lambda a: a.is_success)
        for i, ack in zip(positions, ordered, strict=True):
            batch[i] = ack


def generate(runs: int, seed: int) -> list[RunPlan]:
    """``runs`` random runs, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [plan_run(rng) for _ in range(runs)]


FINDING_KINDS = ("missing", "failed", "drift", "stale", "swept")


@dataclass
class Score:
    """True positives, false positives and false negatives of each kind of finding."""

    tp: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FINDING_KINDS, 0))
    fp: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FINDING_KINDS, 0))
    fn: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FINDING_KINDS, 0))

    def add(self, kind: str, expected: set[object], found: set[object]) -> None:
        """Count one run's findings of one kind against the truth."""
        self.tp[kind] += len(expected & found)
        self.fp[kind] += len(found - expected)
        self.fn[kind] += len(expected - found)

    def precision(self, kind: str) -> float:
        """TP / (TP + FP); 1.0 when nothing was found and nothing was expected."""
        found = self.tp[kind] + self.fp[kind]
        return self.tp[kind] / found if found else 1.0

    def recall(self, kind: str) -> float:
        """TP / (TP + FN); 1.0 when nothing was expected."""
        expected = self.tp[kind] + self.fn[kind]
        return self.tp[kind] / expected if expected else 1.0

    def table(self) -> str:
        """One line per kind: counts, precision and recall."""
        lines = [f"{'kind':<8} {'TP':>6} {'FP':>4} {'FN':>4} {'precision':>9} {'recall':>6}"]
        for kind in FINDING_KINDS:
            lines.append(
                f"{kind:<8} {self.tp[kind]:>6} {self.fp[kind]:>4} {self.fn[kind]:>4}"
                f" {self.precision(kind):>9.4f} {self.recall(kind):>6.4f}"
            )
        return "\n".join(lines)
