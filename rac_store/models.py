"""Data models: expectations, acks, outcomes and reconciliation results.

The models are msgspec Structs encoded as MessagePack arrays (``array_like``):
the field order is the wire format, so new fields are only ever appended, with
a default. Names and defaults are those of the store this package replaces.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Any, TypeVar

import msgspec

from .errors import InvalidInputError


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


class TextEnum(str, Enum):
    """A string enum that prints as its value (``str(AuditStatus.ACKED) == "ACKED"``)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class AuditStatus(TextEnum):
    """Where an expectation stands (see docs/state-machine.md)."""

    PENDING = "PENDING"
    """Declared, not acked yet, its deadline not necessarily passed."""
    ACKED = "ACKED"
    """Acked as a success (maybe late: see ``AuditExpectation.late``)."""
    MISSING = "MISSING"
    """Its deadline passed without an ack (marked by the sweep, ``end_run`` or by hand)."""
    FAILED = "FAILED"
    """Acked as a failure: an error, a rollback, or a FAILED status."""


class AckStatus(TextEnum):
    """What a worker reports about an action."""

    SUCCESS = "SUCCESS"
    """The action succeeded (unless the ack also carries an ``error`` or a rollback)."""
    FAILED = "FAILED"
    """The action failed."""
    ROLLED_BACK = "ROLLED_BACK"
    """The action was undone after the fact."""


class AuditDomain(TextEnum):
    """The standard domains; any other valid string is accepted too."""

    INCIDENTS = "incidents"
    POLICIES = "policies"
    LOGS = "logs"
    ORCHESTRATOR = "orchestrator"


class AuditAction(TextEnum):
    """The standard actions (see :func:`create_run_expectations`); any other valid string too."""

    CREATE_INCIDENT = "create_incident"
    """The incidents domain opens the run's incident."""
    EVALUATE_POLICY = "evaluate_policy"
    """The policies domain evaluates the run's policy."""
    START_TRACE = "start_trace"
    """The logs domain starts the run's trace."""
    COMPLETE_TRACE = "complete_trace"
    """The logs domain completes the trace (not among the standard expectations)."""
    FINALIZE_RUN = "finalize_run"
    """The orchestrator's liveness check: the run finished."""


class AckOutcome(TextEnum):
    """What ``add_ack`` did with an ack."""

    RECORDED = "RECORDED"
    """Recorded against a declared expectation, within its deadline."""
    DUPLICATE = "DUPLICATE"
    """An ack with this id was already recorded; nothing changed."""
    DRIFT = "DRIFT"
    """Recorded, but no expectation matches it (yet)."""
    LATE = "LATE"
    """Recorded after its expectation's deadline."""


class ReconciliationStatus(TextEnum):
    """Overall verdict on one run (precedence: STALE > INCOMPLETE > IN_PROGRESS > COMPLETE)."""

    COMPLETE = "COMPLETE"
    """Every expectation ACKED, no drift: the contract is met."""
    INCOMPLETE = "INCOMPLETE"
    """Something is missing, failed or drift (and the liveness check was acked)."""
    STALE = "STALE"
    """The ``finalize_run`` liveness expectation is missing: the run never finished."""
    IN_PROGRESS = "IN_PROGRESS"
    """No finding yet, but expectations are still PENDING before their deadline."""


class FindingType(TextEnum):
    """The kind of an event in a shard's findings stream (see docs/reconciler.md)."""

    MISSING = "MISSING"
    """An expectation was marked MISSING (by the sweep, ``end_run`` or by hand)."""
    EXPIRED = "EXPIRED"
    """A run in the pending index had lost its keys (TTL); the sweep removed it."""
    COMPLETE = "COMPLETE"
    """A run's verdict became COMPLETE: nothing PENDING, FAILED or MISSING, no drift."""
    INCOMPLETE = "INCOMPLETE"
    """A run's verdict became INCOMPLETE: missing, failed or drift actions."""
    STALE = "STALE"
    """A run's verdict became STALE: its liveness expectation is missing."""
    GAP = "GAP"
    """Not a stream event: a consumer group lost ``details["lost"]`` events of a shard
    (trimmed before the group read them; see :meth:`AuditReconciler.consumer`)."""


def _text(value: str) -> str:
    """The plain string of a str-enum member or of a string."""
    return value.value if isinstance(value, Enum) else value


class AuditExpectation(msgspec.Struct, array_like=True, omit_defaults=True):
    """Domain ``domain`` must perform ``action`` for ``run_id`` within ``deadline_ms``."""

    run_id: uuid.UUID
    domain: str
    action: str
    deadline_ms: int = 5000
    id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    status: AuditStatus = AuditStatus.PENDING
    created_at: datetime = msgspec.field(default_factory=utc_now)
    acked_at: datetime | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    late: bool = False
    """Set by the store: the action was acked (or marked) after its deadline."""

    def key(self) -> tuple[str, str]:
        """The (domain, action) pair that identifies this expectation in its run."""
        return (_text(self.domain), _text(self.action))

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins (strings for UUIDs, ISO 8601 for times), for JSON output."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditExpectation:
        """The expectation of a :meth:`to_dict` result (or any mapping of its fields)."""
        return _from_dict(cls, data)


class DomainAck(msgspec.Struct, array_like=True, omit_defaults=True):
    """A worker's report that ``action`` of ``domain`` finished for ``run_id``."""

    run_id: uuid.UUID
    domain: str
    action: str
    id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    status: AckStatus = AckStatus.SUCCESS
    result_id: str | None = None
    error: str | None = None
    rolled_back: bool = False
    rollback_reason: str | None = None
    created_at: datetime = msgspec.field(default_factory=utc_now)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def is_success(self) -> bool:
        """True when the status is SUCCESS, no ``error`` is given and nothing was rolled back.

        An ack built with ``error="..."`` and the default status is a failure, as in the
        store this package replaces.
        """
        return self.status == AckStatus.SUCCESS and self.error is None and not self.rolled_back

    @property
    def is_rolled_back(self) -> bool:
        """True when the action was rolled back."""
        return self.rolled_back or self.status == AckStatus.ROLLED_BACK

    def key(self) -> tuple[str, str]:
        """The (domain, action) pair of the expectation this ack answers."""
        return (_text(self.domain), _text(self.action))

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins (strings for UUIDs, ISO 8601 for times), for JSON output."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DomainAck:
        """The ack of a :meth:`to_dict` result (or any mapping of its fields)."""
        return _from_dict(cls, data)


ActionKey = tuple[str, str]


class ReconciliationResult(msgspec.Struct, kw_only=True):
    """The findings for one run: what is missing, drift, failed or stale."""

    run_id: uuid.UUID
    status: ReconciliationStatus
    missing_actions: list[ActionKey] = msgspec.field(default_factory=list)
    drift_actions: list[ActionKey] = msgspec.field(default_factory=list)
    failed_actions: list[ActionKey] = msgspec.field(default_factory=list)
    stale_run: bool = False
    expectations_count: int = 0
    acks_count: int = 0
    reconciled_at: datetime = msgspec.field(default_factory=utc_now)
    pending_actions: list[ActionKey] = msgspec.field(default_factory=list)
    """Expectations still PENDING before their deadline (not findings)."""
    late_actions: list[ActionKey] = msgspec.field(default_factory=list)
    """Expectations acked after their deadline (not findings: they did arrive)."""

    @property
    def is_clean(self) -> bool:
        """True only for a COMPLETE run: every expectation acked, no drift.

        A run still IN_PROGRESS is not clean: what is pending may never come.
        """
        return self.status is ReconciliationStatus.COMPLETE

    @property
    def has_missing(self) -> bool:
        """True when at least one expected action was never acked."""
        return bool(self.missing_actions)

    @property
    def has_drift(self) -> bool:
        """True when at least one ack matched no expectation."""
        return bool(self.drift_actions)

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins, for JSON output (with ``is_clean``)."""
        return _to_dict(self) | {"is_clean": self.is_clean}


class Finding(msgspec.Struct, kw_only=True, frozen=True):
    """One event of a shard's findings stream, or one result of a sweep.

    ``details`` holds the event's other fields as text (the counts and action
    lists of INCOMPLETE and STALE events); ``stream_id`` and ``shard`` say where
    the event is in the streams.
    """

    type: FindingType
    run_id: str
    at_ms: int
    source: str
    domain: str | None = None
    action: str | None = None
    due_ms: int | None = None
    details: dict[str, str] = msgspec.field(default_factory=dict)
    shard: int | None = None
    stream_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins, for JSON output."""
        return _to_dict(self)


class SweepReport(msgspec.Struct, kw_only=True):
    """What one ``sweep`` call did: the findings, and whether more runs are due."""

    now_ms: int
    runs_swept: int
    findings: list[Finding] = msgspec.field(default_factory=list)
    more_due: bool = False
    """True when the limit cut the work short: call ``sweep`` again."""

    @property
    def missing(self) -> list[Finding]:
        """The MISSING marks."""
        return [f for f in self.findings if f.type is FindingType.MISSING]

    @property
    def expired(self) -> list[Finding]:
        """The runs found expired (removed from the pending index)."""
        return [f for f in self.findings if f.type is FindingType.EXPIRED]

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins, for JSON output."""
        return _to_dict(self)


class PendingRun(msgspec.Struct, frozen=True):
    """A run in a pending index, with its earliest PENDING due time (server clock)."""

    run_id: str
    due_ms: int
    shard: int


class PendingReport(msgspec.Struct, kw_only=True):
    """Runs of the pending indexes, earliest due first, at server time ``now_ms``."""

    now_ms: int
    runs: list[PendingRun] = msgspec.field(default_factory=list)
    more: bool = False
    """True when the limit cut the list short."""

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins, for JSON output."""
        return _to_dict(self)


def _to_dict(obj: msgspec.Struct) -> dict[str, Any]:
    """A Struct as a dict of JSON-ready builtins, keyed by field name."""
    values = msgspec.to_builtins(obj, enc_hook=str)
    if isinstance(values, list):
        values = dict(zip(obj.__struct_fields__, values, strict=False))
    return dict(values)


S = TypeVar("S", bound=msgspec.Struct)


def _from_dict(cls: type[S], data: Mapping[str, Any]) -> S:
    """A Struct from a mapping of its fields (text UUIDs and ISO times accepted)."""
    if not isinstance(data, Mapping):
        raise InvalidInputError(
            f"{cls.__name__}.from_dict needs a mapping, got {type(data).__name__}"
        )
    unknown = sorted(set(data) - set(cls.__struct_fields__))
    if unknown:
        raise InvalidInputError(f"{cls.__name__} has no field(s) {', '.join(map(repr, unknown))}")
    values = []
    for field in msgspec.structs.fields(cls):
        if field.name in data:
            values.append(data[field.name])
        elif field.required:
            raise InvalidInputError(f"{cls.__name__}.from_dict: {field.name!r} is required")
        elif field.default is not msgspec.NODEFAULT:
            values.append(field.default)
        else:
            values.append(field.default_factory())
    try:
        return msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidInputError(f"{cls.__name__}.from_dict: {exc}") from exc


def as_run_uuid(run_id: uuid.UUID | str) -> uuid.UUID:
    """A run id given as UUID or as its text, as a UUID (InvalidInputError otherwise)."""
    if isinstance(run_id, uuid.UUID):
        return run_id
    try:
        return uuid.UUID(run_id) if isinstance(run_id, str) else _not_a_uuid(run_id)
    except ValueError:
        return _not_a_uuid(run_id)


def _not_a_uuid(run_id: object) -> uuid.UUID:
    raise InvalidInputError(f"run_id must be a UUID or its text, got {run_id!r:.80}")


def create_run_expectations(
    run_id: uuid.UUID | str, run_timeout_ms: int = 30000, grace_period_ms: int = 5000
) -> list[AuditExpectation]:
    """The four standard expectations of a run, the last a liveness check.

    ``finalize_run`` is due after ``run_timeout_ms + grace_period_ms`` and carries
    ``metadata["is_liveness_check"] = True``: when it is never acked the run is stale.
    """
    run_id = as_run_uuid(run_id)
    return [
        AuditExpectation(
            run_id, AuditDomain.INCIDENTS, AuditAction.CREATE_INCIDENT, run_timeout_ms
        ),
        AuditExpectation(run_id, AuditDomain.POLICIES, AuditAction.EVALUATE_POLICY, run_timeout_ms),
        AuditExpectation(run_id, AuditDomain.LOGS, AuditAction.START_TRACE, run_timeout_ms),
        AuditExpectation(
            run_id,
            AuditDomain.ORCHESTRATOR,
            AuditAction.FINALIZE_RUN,
            run_timeout_ms + grace_period_ms,
            metadata={"is_liveness_check": True},
        ),
    ]


def create_domain_ack(
    run_id: uuid.UUID | str,
    domain: str,
    action: str,
    result_id: str | None = None,
    error: str | None = None,
    rolled_back: bool = False,
    rollback_reason: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> DomainAck:
    """An ack whose status follows from ``error`` and ``rolled_back``."""
    if rolled_back:
        status = AckStatus.ROLLED_BACK
    elif error is not None:
        status = AckStatus.FAILED
    else:
        status = AckStatus.SUCCESS
    return DomainAck(
        as_run_uuid(run_id),
        domain,
        action,
        status=status,
        result_id=result_id,
        error=error,
        rolled_back=rolled_back,
        rollback_reason=rollback_reason,
        metadata=metadata if metadata is not None else {},
    )
