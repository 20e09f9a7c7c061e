"""Sans-I/O core shared by every store: the calls to make and how to read replies.

Nothing here talks to Redis. A store turns a :class:`ScriptCall` into one
EVALSHA (or a plain read), and hands the reply back to a ``parse_*`` function.
The sync store, the asyncio store and the cluster path all go through here, so
keys, arguments, replies and errors exist once.
"""

from __future__ import annotations

import heapq
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

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
_OUTCOMES = (AckOutcome.RECORDED, AckOutcome.DUPLICATE, AckOutcome.DRIFT, AckOutcome.LATE)


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One script invocation: which script, its KEYS and ARGV, and a name for errors."""

    script: str
    keys: Sequence[str]
    args: Sequence[Arg]
    operation: str


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


class StoreCore:
    """Builds every call of a store with one key space and TTL."""

    def __init__(self, keyspace: KeySpace, ttl_seconds: int) -> None:
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
            raise InvalidInputError(f"ttl_seconds must be a positive int: {ttl_seconds!r}")
        self.keys = keyspace
        self.ttl_seconds = ttl_seconds
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
        return ScriptCall("add_expectations", self.keys.for_run(run), args, "add_expectations")

    def add_ack(self, run_id: uuid.UUID | str, ack: DomainAck) -> ScriptCall:
        """Record one ack (the hot path: one call, no extra round trip)."""
        run = canonical_run_id(run_id)
        key = check_ack(run, ack)
        payload = codec.encode(ack)
        args = (self._ttl_ms, 1, run, 1, ack.id.bytes, key, _ok(ack), payload)
        return ScriptCall("add_acks", self.keys.for_run(run), args, "add_ack")

    def add_acks(self, run_id: uuid.UUID | str, acks: Iterable[DomainAck]) -> ScriptCall:
        """Record many acks of one run in one call."""
        run = canonical_run_id(run_id)
        batch = check_batch(acks, "acks")
        args: list[Arg] = [self._ttl_ms, 1, run, len(batch)]
        for ack in batch:
            key = check_ack(run, ack)
            args += (ack.id.bytes, key, _ok(ack), codec.encode(ack))
        return ScriptCall("add_acks", self.keys.for_run(run), args, "add_acks")

    def update_status(
        self, run_id: uuid.UUID | str, domain: str, action: str, status: AuditStatus | str
    ) -> ScriptCall:
        """Move one expectation along the state machine."""
        run = canonical_run_id(run_id)
        args = (self._ttl_ms, run, action_key(domain, action), check_status(status).value)
        return ScriptCall(
            "update_status", self.keys.for_run(run), args, "update_expectation_status"
        )

    def clear_run(self, run_id: uuid.UUID | str) -> ScriptCall:
        """Delete every key of one run and its index entry."""
        run = canonical_run_id(run_id)
        return ScriptCall("clear_run", self.keys.for_run(run), (run,), "clear_run")

    # -- reads ----------------------------------------------------------------------
    def read_expectations(self, run_id: uuid.UUID | str) -> ScriptCall:
        """A consistent snapshot of one run's expectations and statuses."""
        keys = self.keys.for_run(canonical_run_id(run_id))
        return ScriptCall("read_expectations", keys[1:3], (), "get_expectations")

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


# -- reply parsing ------------------------------------------------------------------
def _ok(ack: DomainAck) -> str:
    return "1" if ack.is_success else "0"


def parse_outcomes(reply: Sequence[int]) -> list[AckOutcome]:
    """The outcome of each ack of an ``add_acks`` call."""
    return [_OUTCOMES[code] for code in reply]


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
