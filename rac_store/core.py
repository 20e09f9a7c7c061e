"""Sans-I/O core shared by every store: the calls to make and how to read replies.

Nothing here talks to Redis. A store turns a :class:`ScriptCall` into one
EVALSHA (or a plain read), and hands the reply back to a ``parse_*`` function.
The sync store, the asyncio store and the cluster path all go through here, so
keys, arguments, replies and errors exist once.
"""

from __future__ import annotations

import heapq
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from . import codec
from .errors import InvalidInputError, is_retryable, was_not_executed
from .keys import LAYOUT_VERSION, KeySpace
from .models import AckOutcome, AuditExpectation, AuditStatus, DomainAck
from .validation import (
    KEY_SEPARATOR,
    action_key,
    canonical_run_id,
    check_ack,
    check_batch,
    check_expectation,
    check_status,
)

Arg = str | bytes | int
DEFAULT_FINDINGS_MAXLEN = 10_000
"""Default bound of each shard's findings stream (approximate ``XADD MAXLEN ~``)."""
MAX_SWEEP_MARKS = 1000
"""Most expectations one ``sweep_run`` call marks MISSING (its work per call is bounded)."""
DEFAULT_SWEEP_MARKS = MAX_SWEEP_MARKS
_OUTCOMES = (AckOutcome.RECORDED, AckOutcome.DUPLICATE, AckOutcome.DRIFT, AckOutcome.LATE)


class ScriptCall(NamedTuple):
    """One script invocation: which script, its KEYS and ARGV, and a name for errors.

    A named tuple rather than a dataclass: one is built per ack on the hot path,
    and a tuple is the cheapest immutable record Python makes.
    """

    script: str
    keys: Sequence[str]
    args: Sequence[Arg]
    operation: str


@dataclass(frozen=True, slots=True)
class CommandCall:
    """Plain commands sent together (one non-transactional pipeline); replies in order."""

    commands: Sequence[Sequence[Arg]]
    operation: str


Call = ScriptCall | CommandCall
"""Anything a store's ``execute`` sends."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for lost connections, timeouts and refusals.

    Lost connections and timeouts are re-sent at most ``attempts - 1`` times;
    this is safe only because every script is idempotent: a re-sent call ends
    in the same state as one that ran once. Replies that say the call did not
    run at all (``TRYAGAIN`` and ``CLUSTERDOWN`` while a Redis Cluster moves a
    slot or completes a failover, ``NOSCRIPT`` after a script cache loss; see
    :data:`rac_store.errors.NOT_EXECUTED_ERRORS`) are re-sent for up to
    ``busy_timeout`` seconds.
    """

    attempts: int = 4
    base_delay: float = 0.05
    max_delay: float = 1.0
    busy_timeout: float = 10.0

    def delays(self) -> list[float]:
        """The pause before each re-send (one fewer than ``attempts``)."""
        return [min(self.max_delay, self.base_delay * 2**i) for i in range(self.attempts - 1)]

    def retrier(self, clock: Callable[[], float] = time.monotonic) -> Retrier:
        """The retry decisions of one call, starting now."""
        return Retrier(self, clock)


class Retrier:
    """Decides, error after error of one call, whether and when to re-send it.

    Sans-I/O: the sync store sleeps and the asyncio store awaits the delay it returns.
    """

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._delays = policy.delays()
        self._lost = 0
        self._refused = 0
        self._refused_since: float | None = None

    def delay_after(self, exc: BaseException) -> float | None:
        """The pause before re-sending after ``exc``; None when ``exc`` must reach the caller."""
        policy = self._policy
        if is_retryable(exc):
            if self._lost >= len(self._delays):
                return None
            self._lost += 1
            return self._delays[self._lost - 1]
        if not was_not_executed(exc):
            return None
        now = self._clock()
        if self._refused_since is None:
            self._refused_since = now
        left = policy.busy_timeout - (now - self._refused_since)
        if left <= 0:
            return None
        delay = min(policy.max_delay, policy.base_delay * 2.0**self._refused, left)
        self._refused += 1
        return delay


@dataclass(frozen=True, slots=True)
class PendingQuery:
    """A range read of one shard's pending index."""

    key: str
    max_score: str
    limit: int | None


def _ms(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInputError("due_before must be timezone-aware")
        return int(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"due_before must be a datetime or epoch ms, got {value!r:.80}")
    return value


def ms_to_datetime(ms: int) -> datetime:
    """An epoch-millisecond time as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def positive_int(value: object, what: str) -> int:
    """``value`` when it is an int > 0; InvalidInputError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInputError(f"{what} must be a positive int: {value!r:.80}")
    return value


def sweep_marks(limit: object) -> int:
    """``limit`` when it is a valid number of marks for one ``sweep_run`` call."""
    marks = positive_int(limit, "marks limit")
    if marks > MAX_SWEEP_MARKS:
        raise InvalidInputError(f"marks limit must be at most {MAX_SWEEP_MARKS}: {marks}")
    return marks


class StoreCore:
    """Builds every call of a store with one key space, TTL and findings-stream bound."""

    def __init__(
        self,
        keyspace: KeySpace,
        ttl_seconds: int,
        findings_maxlen: int = DEFAULT_FINDINGS_MAXLEN,
    ) -> None:
        self.keys = keyspace
        self.ttl_seconds = positive_int(ttl_seconds, "ttl_seconds")
        self.findings_maxlen = positive_int(findings_maxlen, "findings_maxlen")
        self._ttl_ms = ttl_seconds * 1000

    # -- start-up -----------------------------------------------------------------
    def init_meta(self) -> ScriptCall:
        """Record (or check) the shard count and layout version."""
        return ScriptCall(
            "init_meta", (self.keys.meta,), (self.keys.shards, LAYOUT_VERSION), "init_meta"
        )

    # -- writes ---------------------------------------------------------------------
    def add_expectations(
        self, run_id: uuid.UUID | str, expectations: Iterable[AuditExpectation]
    ) -> ScriptCall:
        """Declare expectations of one run (insert-if-absent)."""
        run = canonical_run_id(run_id)
        batch = check_batch(expectations, "expectations")
        args: list[Arg] = [self._ttl_ms, run, len(batch)]
        for exp in batch:
            key = check_expectation(run, exp)
            args += (key, exp.deadline_ms, codec.encode(exp))
        args.append(self.findings_maxlen)
        return ScriptCall("add_expectations", self.keys.for_run(run), args, "add_expectations")

    def add_ack(self, run_id: uuid.UUID | str, ack: DomainAck) -> ScriptCall:
        """Record one ack (the hot path: one call, no extra round trip)."""
        run = canonical_run_id(run_id)
        key = check_ack(run, ack)
        payload = codec.encode(ack)
        args = (
            self._ttl_ms,
            call_token(),
            1,
            run,
            1,
            ack.id.bytes,
            key,
            _ok(ack),
            payload,
            self.findings_maxlen,
        )
        return ScriptCall("add_acks", self.keys.for_run(run), args, "add_ack")

    def add_acks(self, run_id: uuid.UUID | str, acks: Iterable[DomainAck]) -> ScriptCall:
        """Record many acks of one run in one call."""
        run = canonical_run_id(run_id)
        batch = check_batch(acks, "acks")
        args: list[Arg] = [self._ttl_ms, call_token(), 1, run, len(batch)]
        for ack in batch:
            key = check_ack(run, ack)
            args += (ack.id.bytes, key, _ok(ack), codec.encode(ack))
        args.append(self.findings_maxlen)
        return ScriptCall("add_acks", self.keys.for_run(run), args, "add_acks")

    def update_status(
        self, run_id: uuid.UUID | str, domain: str, action: str, status: AuditStatus | str
    ) -> ScriptCall:
        """Move one expectation along the state machine."""
        run = canonical_run_id(run_id)
        key = action_key(domain, action)
        args = (self._ttl_ms, run, key, check_status(status).value, self.findings_maxlen)
        return ScriptCall(
            "update_status", self.keys.for_run(run), args, "update_expectation_status"
        )

    def clear_run(self, run_id: uuid.UUID | str) -> ScriptCall:
        """Delete every key of one run and its index entry."""
        run = canonical_run_id(run_id)
        return ScriptCall("clear_run", self.keys.for_run(run)[:6], (run,), "clear_run")

    def sweep_run(self, run_id: uuid.UUID | str, limit: int = DEFAULT_SWEEP_MARKS) -> ScriptCall:
        """Mark one run's overdue PENDING expectations MISSING (at most ``limit``)."""
        run = canonical_run_id(run_id)
        args = (self._ttl_ms, run, sweep_marks(limit), self.findings_maxlen)
        return ScriptCall("sweep_run", self.keys.for_run(run), args, "sweep")

    def record_finding(
        self, run_id: uuid.UUID | str, kind: str, fields: Sequence[tuple[str, str]]
    ) -> ScriptCall:
        """Append a STALE or INCOMPLETE verdict to the run's shard stream."""
        run = canonical_run_id(run_id)
        if kind not in ("STALE", "INCOMPLETE"):
            raise InvalidInputError(f"a recorded finding is STALE or INCOMPLETE, not {kind!r}")
        args: list[Arg] = [self.findings_maxlen, kind, run]
        for name, value in fields:
            args += (name, value)
        keys = (self.keys.for_run(run).findings,)
        return ScriptCall("record_finding", keys, args, "record_finding")

    # -- reads ----------------------------------------------------------------------
    def read_expectations(self, run_id: uuid.UUID | str) -> ScriptCall:
        """A consistent snapshot of one run's expectations and statuses."""
        keys = self.keys.for_run(canonical_run_id(run_id))
        return ScriptCall("read_expectations", keys[1:3], (), "get_expectations")

    def read_run(self, run_id: uuid.UUID | str) -> ScriptCall:
        """A consistent snapshot of one run for the reconciler (with server time)."""
        keys = self.keys.for_run(canonical_run_id(run_id))
        return ScriptCall("read_run", keys[1:5], (), "reconcile")

    def server_time(self) -> CommandCall:
        """The server's clock (``TIME``)."""
        return CommandCall((("TIME",),), "server_time")

    def pending_runs(self, before_ms: int | None, limit: int, operation: str) -> CommandCall:
        """Each shard's runs due before ``before_ms`` (all if None), earliest first."""
        positive_int(limit, "limit")
        before = "+inf" if before_ms is None else f"({before_ms}"
        commands = [
            ("ZRANGEBYSCORE", key, "-inf", before, "WITHSCORES", "LIMIT", 0, limit)
            for key in self.keys.all_pending()
        ]
        return CommandCall(commands, operation)

    def findings_tail(self) -> CommandCall:
        """The last entry of every shard's findings stream (to start reading after it)."""
        commands = [("XREVRANGE", key, "+", "-", "COUNT", 1) for key in self.keys.all_findings()]
        return CommandCall(commands, "iter_findings")

    def read_findings(
        self, after: Sequence[str], count: int, block_ms: int | None, per_shard: bool = False
    ) -> CommandCall:
        """One ``XREAD`` of every shard's stream after the ids in ``after`` (shard order).

        ``per_shard`` (a Redis Cluster, where one command's keys must share a slot):
        one non-blocking ``XREAD`` per shard instead, ``block_ms`` ignored.
        """
        keys = self.keys.all_findings()
        if len(after) != len(keys):
            raise InvalidInputError(f"need one stream id per shard ({len(keys)})")
        command: list[Arg] = ["XREAD", "COUNT", positive_int(count, "count")]
        if per_shard:
            reads = [
                (*command, "STREAMS", key, last) for key, last in zip(keys, after, strict=True)
            ]
            return CommandCall(reads, "iter_findings")
        if block_ms is not None:
            command += ("BLOCK", positive_int(block_ms, "block_ms"))
        return CommandCall((tuple([*command, "STREAMS", *keys, *after]),), "iter_findings")

    def acks_key(self, run_id: uuid.UUID | str) -> str:
        """The list of a run's encoded acks."""
        return self.keys.for_run(canonical_run_id(run_id))[4]

    def existence_keys(self, run_id: uuid.UUID | str) -> tuple[str, ...]:
        """The keys whose existence means the run is in the store."""
        keys = self.keys.for_run(canonical_run_id(run_id))
        return (keys[1], keys[2], keys[4])

    def pending_queries(
        self, due_before: datetime | int | None, limit: int | None
    ) -> list[PendingQuery]:
        """One range read per shard for ``get_pending_run_ids``."""
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise InvalidInputError(f"limit must be a non-negative int: {limit!r}")
        max_score = "+inf" if due_before is None else str(_ms(due_before))
        return [PendingQuery(key, max_score, limit) for key in self.keys.all_pending()]


# -- helpers --------------------------------------------------------------------------
CALL_TOKEN_BYTES = 8


def call_token() -> bytes:
    """Random bytes naming one logical ack call; a re-send carries the same ones.

    ``add_acks.lua`` stores it with each ack id, so when a reply is lost and the
    call is re-sent, the re-send reports the outcome the first run gave (not
    DUPLICATE). See docs/reliability.md.
    """
    return os.urandom(CALL_TOKEN_BYTES)


def _ok(ack: DomainAck) -> str:
    return "1" if ack.is_success else "0"


# -- reply parsing ------------------------------------------------------------------
def parse_outcomes(reply: Sequence[int]) -> list[AckOutcome]:
    """The outcome of each ack of an ``add_acks`` call."""
    return [_OUTCOMES[code] for code in reply]


def parse_outcome(reply: Sequence[int]) -> AckOutcome:
    """The outcome of a single-ack call (``add_ack``)."""
    return _OUTCOMES[reply[0]]


def parse_expectations(reply: Sequence[Sequence[bytes]]) -> list[AuditExpectation]:
    """Expectations with their current status, acked_at and late mark filled in."""
    stored, statuses = reply
    status_of = dict(zip(statuses[::2], statuses[1::2], strict=True))
    result = []
    for field, payload in zip(stored[::2], stored[1::2], strict=True):
        exp = codec.decode_expectation(payload)
        record = status_of.get(field)
        if record is not None:
            status, acked_at, late = record.decode().split(KEY_SEPARATOR)
            exp.status = AuditStatus(status)
            exp.acked_at = ms_to_datetime(int(acked_at)) if acked_at != "0" else None
            exp.late = late == "1"
        result.append(exp)
    result.sort(key=lambda e: (e.created_at, e.domain, e.action))
    return result


def parse_acks(reply: Sequence[bytes]) -> list[DomainAck]:
    """Acks in arrival order."""
    return [codec.decode_ack(payload) for payload in reply]


def merge_pending(replies: Sequence[Sequence[tuple[bytes, float]]], limit: int | None) -> list[str]:
    """Run ids of every shard, earliest due first, cut at ``limit``."""
    merged: Iterable[tuple[bytes, float]] = heapq.merge(*replies, key=lambda pair: pair[1])
    ids = [member.decode() for member, _ in merged]
    return ids if limit is None else ids[:limit]


def parse_count(reply: Any) -> int:
    """An integer reply."""
    return int(reply)


def parse_server_time(reply: Sequence[Any]) -> int:
    """A ``TIME`` reply as epoch milliseconds."""
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


def queue_pending_reads(pipe: Any, queries: Sequence[PendingQuery]) -> None:
    """Queue each query's range read on a sync or asyncio pipeline (buffering only, no I/O)."""
    for q in queries:
        pipe.zrangebyscore(
            q.key,
            "-inf",
            q.max_score,
            start=0 if q.limit is not None else None,
            num=q.limit,
            withscores=True,
        )
