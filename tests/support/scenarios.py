"""Randomized audit scenarios with known ground truth, for the reconciler.

Each run declares a few expectations; each expectation gets a *fate* (acked in
time, acked late, failed, failed then retried, rolled back after a success,
missing, still pending, acked before it was declared ...), and some runs get
drift acks and re-sent (duplicate) acks; some runs are ended early
(``end_run``). The plan says which acks are sent in which phase, and
:meth:`RunPlan.truth` says what the reconciler must find — the findings, the
verdict under ``final=True``, and the verdict events the store must push —
independently of the store: nothing here reads the store. It replays the
status state machine of docs/state-machine.md on its own.

Phases, in order (:data:`PHASES`, with the driver's steps between them):

``early``    acks sent before the run's expectations are declared (out of order)
``declare``  the expectations are declared (done by the driver)
``main``     in-time acks, failures, retries, rollbacks, drift, duplicates in a batch
``end``      ``end_run`` for the runs planned to end early (done by the driver)
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
CHECKPOINTS = ("declare", "main", "end", "overdue", "sweep", "late")
"""Where a run's state can change, in order; the source of a verdict pushed there."""
SOURCE = {"declare": "declare", "main": "ack", "end": "end", "overdue": "ack"} | {
    "sweep": "sweep",
    "late": "ack",
}

FATES = (
    "ok",  # acked in time
    "failed",  # acked with an error (status FAILED): a FAILED finding
    "error_default",  # DomainAck(error=...) with the default status: FAILED too
    "retried",  # FAILED, then a successful retry: ACKED
    "rolled_back",  # acked, then rolled back: FAILED
    "failed_after_ok",  # acked, then a failed attempt: ACKED (one attempt succeeded)
    "missing",  # never acked, deadline passed: MISSING (marked by the sweep)
    "pending",  # never acked, deadline not passed: pending, not a finding
    "late",  # acked after the sweep marked it MISSING: ACKED, late
    "overdue",  # acked after its deadline, before the sweep: ACKED, late
    "early",  # acked before it was declared: ACKED
    "early_failed",  # acked with an error before it was declared: FAILED
)
FAILED_FATES = ("failed", "error_default", "rolled_back", "early_failed")
_SHORT_FATES = {"missing", "late", "overdue"}
_SENDS: dict[str, list[tuple[str, str]]] = {
    "ok": [("main", "ok")],
    "failed": [("main", "error")],
    "error_default": [("main", "error_default")],
    "retried": [("main", "error"), ("main", "ok")],
    "rolled_back": [("main", "ok"), ("main", "undo")],
    "failed_after_ok": [("main", "ok"), ("main", "error")],
    "missing": [],
    "pending": [],
    "late": [("late", "ok")],
    "overdue": [("overdue", "ok")],
    "early": [("early", "ok")],
    "early_failed": [("early", "error")],
}
"""The acks each fate sends: (phase, kind), in order."""

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
    ended: list[ActionKey]
    """Expectations end_run marks MISSING (PENDING when the run is ended)."""
    final_missing: list[ActionKey]
    """What ``reconcile(final=True)`` counts missing at the end (pending included)."""
    final_status: ReconciliationStatus
    verdicts: list[tuple[str, str]]
    """The verdict events pushed for the run, in order: (type, source)."""


def _target(status: str | None, kind: str) -> str | None:
    """The status an ack of ``kind`` leaves (None: no change), as add_acks.lua moves it."""
    ok = kind == "ok"
    if status in (None, "PENDING", "MISSING"):
        return "ACKED" if ok else "FAILED"
    if status == "FAILED" and ok:
        return "ACKED"
    if status == "ACKED" and kind == "undo":
        return "FAILED"
    return None


@dataclass
class RunPlan:
    """One run: its expectations, the fate of each, and the acks of each phase."""

    run_id: uuid.UUID
    expectations: list[AuditExpectation]
    fates: dict[ActionKey, str]
    drift: dict[ActionKey, bool]
    """Undeclared pairs acked, and whether their (last) ack succeeded."""
    ended: bool = False
    """The run is ended (``end_run``) right after the ``main`` phase."""
    acks: dict[str, list[DomainAck]] = field(default_factory=lambda: {p: [] for p in PHASES})
    kinds: dict[str, list[tuple[ActionKey, str]]] = field(
        default_factory=lambda: {p: [] for p in PHASES}
    )
    """Per phase, (key, kind) of each ack in sending order (for the replay)."""

    def _replay(self) -> list[tuple[str, dict[ActionKey, str], set[ActionKey]]]:
        """The declared statuses and the drift keys after each checkpoint."""
        statuses: dict[ActionKey, str] = {}
        drift: set[ActionKey] = set()
        recorded: dict[ActionKey, str] = {}  # before the declaration
        short = {k for k, fate in self.fates.items() if fate in _SHORT_FATES}

        def ack(phase: str) -> None:
            for key, kind in self.kinds[phase]:
                if key in self.fates and statuses:
                    moved = _target(statuses[key], kind)
                    statuses[key] = moved or statuses[key]
                else:
                    moved = _target(recorded.get(key), kind)
                    recorded[key] = moved or recorded.get(key) or ""
                    if key not in self.fates:
                        drift.add(key)

        states = []
        ack("early")
        statuses.update({k: recorded.get(k) or "PENDING" for k in self.fates})
        states.append(("declare", dict(statuses), set(drift)))
        ack("main")
        states.append(("main", dict(statuses), set(drift)))
        if self.ended:
            statuses.update({k: "MISSING" for k, s in statuses.items() if s == "PENDING"})
            states.append(("end", dict(statuses), set(drift)))
        ack("overdue")
        states.append(("overdue", dict(statuses), set(drift)))
        for key in short:
            if statuses[key] == "PENDING":
                statuses[key] = "MISSING"
        states.append(("sweep", dict(statuses), set(drift)))
        ack("late")
        states.append(("late", dict(statuses), set(drift)))
        return states

    def _verdict(self, statuses: dict[ActionKey, str], drift: set[ActionKey]) -> str:
        if statuses.get(LIVENESS) == "MISSING":
            return "STALE"
        if drift or any(s in ("MISSING", "FAILED") for s in statuses.values()):
            return "INCOMPLETE"
        return "COMPLETE"

    def truth(self) -> Truth:
        """The findings, derived from the plan alone."""

        def having(*fates: str) -> list[ActionKey]:
            return sorted(k for k, fate in self.fates.items() if fate in fates)

        states = self._replay()
        last = states[-1][1]
        missing = sorted(k for k, s in last.items() if s == "MISSING")
        failed = sorted(k for k, s in last.items() if s == "FAILED")
        pending = sorted(k for k, s in last.items() if s == "PENDING")
        drift = sorted(self.drift)
        stale = last.get(LIVENESS) == "MISSING"
        if stale:
            status = ReconciliationStatus.STALE
        elif missing or failed or drift:
            status = ReconciliationStatus.INCOMPLETE
        elif pending:
            status = ReconciliationStatus.IN_PROGRESS
        else:
            status = ReconciliationStatus.COMPLETE
        final_missing = sorted(missing + pending)
        if stale or LIVENESS in pending:
            final_status = ReconciliationStatus.STALE
        elif final_missing or failed or drift:
            final_status = ReconciliationStatus.INCOMPLETE
        else:
            final_status = ReconciliationStatus.COMPLETE
        pushed: list[tuple[str, str]] = []
        for checkpoint, statuses, drifted in states:
            if "PENDING" in statuses.values():
                continue
            verdict = self._verdict(statuses, drifted)
            if not pushed or pushed[-1][0] != verdict:
                pushed.append((verdict, SOURCE[checkpoint]))
        recorded = status.value in ("STALE", "INCOMPLETE")  # by reconcile(record=True)
        if recorded and (not pushed or pushed[-1][0] != status.value):
            pushed.append((status.value, "reconcile"))
        ids = {ack.id for phase in PHASES for ack in self.acks[phase]}
        never_acked = having("missing", "pending", "late", "overdue")
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
            swept=[] if self.ended else having("missing", "late"),
            ended=never_acked if self.ended else [],
            final_missing=final_missing,
            final_status=final_status,
            verdicts=pushed,
        )


def _ack(run: uuid.UUID, key: ActionKey, kind: str) -> DomainAck:
    if kind == "error_default":
        return DomainAck(run_id=run, domain=key[0], action=key[1], error="engine timeout")
    if kind == "undo":
        return create_domain_ack(run, key[0], key[1], rolled_back=True, rollback_reason="tx")
    return create_domain_ack(run, key[0], key[1], error="boom" if kind == "error" else None)


def plan_run(rng: random.Random, end_share: float = 0.0) -> RunPlan:
    """One random run; ``end_share`` of the runs are ended early."""
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
    plan = RunPlan(run, expectations, fates, drift, ended=rng.random() < end_share)
    planned: dict[str, list[tuple[ActionKey, str]]] = {p: [] for p in PHASES}
    for key, fate in fates.items():
        for phase, kind in _SENDS[fate]:
            planned[phase].append((key, kind))
    # Drift goes with the run's first acks.
    first = "early" if planned["early"] else "main"
    for key, ok in drift.items():
        planned[first].append((key, "ok" if ok else "error"))
    for phase in ("early", "main"):
        _shuffle_keeping_each_keys_order(rng, planned[phase])
    for phase in PHASES:
        for key, kind in planned[phase]:
            plan.acks[phase].append(_ack(run, key, kind))
            plan.kinds[phase].append((key, kind))
    before_main = plan.acks["early"] + plan.acks["main"]
    if before_main and rng.random() < 0.4:
        # a duplicate in the batch or of an early ack: changes nothing
        again = rng.randrange(len(before_main))
        plan.acks["main"].append(before_main[again])
    sent = [a for phase in PHASES for a in plan.acks[phase]]
    if sent and rng.random() < 0.4:
        plan.acks["late"].append(rng.choice(sent))  # re-delivered after everything
    return plan


def _shuffle_keeping_each_keys_order(
    rng: random.Random, batch: list[tuple[ActionKey, str]]
) -> None:
    """Shuffle a phase's acks, keeping the acks of one action in their planned order."""
    planned = list(batch)
    rng.shuffle(batch)
    for key in {k for k, _ in planned}:
        positions = [i for i, (k, _) in enumerate(batch) if k == key]
        in_order = [item for item in planned if item[0] == key]
        for i, item in zip(positions, in_order, strict=True):
            batch[i] = item


def generate(runs: int, seed: int, end_share: float = 0.0) -> list[RunPlan]:
    """``runs`` random runs, reproducible from ``seed``; ``end_share`` of them ended early."""
    rng = random.Random(seed)
    return [plan_run(rng, end_share) for _ in range(runs)]


FINDING_KINDS = ("missing", "failed", "drift", "stale", "swept", "ended", "final_missing")


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
        lines = [f"{'kind':<14} {'TP':>6} {'FP':>4} {'FN':>4} {'precision':>9} {'recall':>6}"]
        for kind in FINDING_KINDS:
            lines.append(
                f"{kind:<14} {self.tp[kind]:>6} {self.fp[kind]:>4} {self.fn[kind]:>4}"
                f" {self.precision(kind):>9.4f} {self.recall(kind):>6.4f}"
            )
        return "\n".join(lines)
