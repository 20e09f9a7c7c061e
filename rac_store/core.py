"""Sans-I/O core shared by every store: the calls to make and how to read replies.

Nothing here talks to Redis. A store turns a :class:`ScriptCall` into one
EVALSHA (or a plain read), and hands the reply back to a ``parse_*`` function.
The sync store, the asyncio store and the cluster path all go through here, so
keys, arguments, replies and errors exist once.
"""

from __future__ import annotations

import heapq
import itertools
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import codec
from .acks import CallSettings, ack_group, add_acks_call, single_ack_group
from .errors import InvalidInputError, LayoutMismatchError, StoreNotFoundError
from .keys import LAYOUT_VERSION, KeySpace, RunKeys
from .models import AckOutcome, AuditExpectation, AuditStatus, DomainAck
from .scripts import Arg, Script, ScriptCall
from .validation import (
    KEY_SEPARATOR,
    MAX_FINDINGS_MAXLEN,
    MAX_TTL_SECONDS,
    action_key,
    bounded_int,
    canonical_run_id,
    check_batch,
    check_expectation,
    check_status,
)

DEFAULT_FINDINGS_MAXLEN = 10_000
"""Default bound of each shard's findings stream (approximate ``XADD MAXLEN ~``)."""
MAX_SWEEP_MARKS = 1000
"""Most expectations one ``sweep_run`` call marks MISSING (its work per call is bounded)."""
DEFAULT_SWEEP_MARKS = MAX_SWEEP_MARKS
LIVENESS_FLAG = "is_liveness_check"
"""The metadata key that makes an expectation a liveness check (its MISSING makes a run STALE)."""
_OUTCOMES = (AckOutcome.RECORDED, AckOutcome.DUPLICATE, AckOutcome.DRIFT, AckOutcome.LATE)


@dataclass(frozen=True, slots=True)
class CommandCall:
    """Plain commands sent together (one non-transactional pipeline); replies in order."""

    commands: Sequence[Sequence[Arg]]
    operation: str
    writes: bool = False
    """True when a command writes (a read-only store refuses the call)."""


Call = ScriptCall | CommandCall
"""Anything a store's ``execute`` sends."""


def is_liveness(exp: AuditExpectation) -> bool:
    """True for a liveness expectation (``metadata["is_liveness_check"] is True``)."""
    return exp.metadata.get(LIVENESS_FLAG) is True


def epoch_ms(value: datetime | int) -> int:
    """A due-before bound (aware datetime or epoch ms) as epoch milliseconds."""
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
        self.ttl_seconds = bounded_int(ttl_seconds, "ttl_seconds", 1, MAX_TTL_SECONDS)
        self.findings_maxlen = bounded_int(
            findings_maxlen, "findings_maxlen", 1, MAX_FINDINGS_MAXLEN
        )
        self._ttl_ms = ttl_seconds * 1000
        self.epochs: dict[str, str] = {}
        """Epoch key -> the store epoch of that shard, as read when the store opened
        (:meth:`open_epochs`); every write call carries its shard's (reset detection).
        Filled in place: :attr:`ack_settings` (and the asyncio auto-pipeline) share it."""
        self.ack_settings = CallSettings(self._ttl_ms, self.findings_maxlen, self.epochs)
        """What every ``add_acks`` call of this store carries (see :mod:`rac_store.acks`)."""

    # -- start-up -----------------------------------------------------------------
    def init_meta(self) -> ScriptCall:
        """Record (or check) the shard count and layout version."""
        args = (self.keys.shards, LAYOUT_VERSION)
        return ScriptCall(Script.INIT_META, (self.keys.meta,), args, "init_meta")

    def open_epochs(self) -> CommandCall:
        """Read every shard's store epoch (one pipeline of ``GET``); see :meth:`adopt_epochs`.

        Every write script compares its shard's epoch with the one read when the
        store opened, so a store notices a server that lost its data
        (docs/reliability.md, "Reset detection").
        """
        return CommandCall([("GET", key) for key in self.keys.all_epochs()], "open")

    def adopt_epochs(self, call: CommandCall, replies: Sequence[Any]) -> CommandCall | None:
        """Take in the replies of :meth:`open_epochs` (or of the call this returns).

        Returns None when every shard's epoch is known, else the call that makes the
        missing ones: ``SET <key> <new epoch> NX GET``, whose reply is the epoch another
        store made meanwhile, or nil when this one made it. A store on a server where
        the epochs exist sends no write (an inspector user may open it).
        """
        for command, reply in zip(call.commands, replies, strict=True):
            made = command[2] if command[0] == "SET" else None
            value = made if reply is None else reply
            if value is not None:
                self.epochs[str(command[1])] = text(value)
        missing = [key for key in self.keys.all_epochs() if key not in self.epochs]
        if not missing:
            return None
        new = os.urandom(12).hex()
        return CommandCall([("SET", key, new, "NX", "GET") for key in missing], "open", True)

    def read_meta(self) -> CommandCall:
        """The layout the store recorded (shard count, layout version), without writing."""
        return CommandCall((("HMGET", self.keys.meta, "shards", "layout"),), "open")

    def adopt_layout(self, replies: Sequence[Any], shards_given: bool) -> StoreCore:
        """This core, or one with the recorded shard count, after a :meth:`read_meta` reply.

        StoreNotFoundError when nothing is recorded under the prefix;
        LayoutMismatchError when the recorded layout differs from what was asked.
        """
        shards, layout = (None if v is None else text(v) for v in replies[0])
        prefix = self.keys.prefix
        if shards is None:
            raise StoreNotFoundError(f"no store under prefix {prefix!r}")
        if layout != LAYOUT_VERSION:
            raise LayoutMismatchError(
                f"store {prefix!r} has key layout {layout}, this version reads {LAYOUT_VERSION}"
            )
        if int(shards) == self.keys.shards:
            return self
        if shards_given:
            raise LayoutMismatchError(
                f"store {prefix!r} has {shards} shards, {self.keys.shards} were asked"
            )
        keyspace = KeySpace(prefix, int(shards))
        return StoreCore(keyspace, self.ttl_seconds, self.findings_maxlen)

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
            live = "1" if is_liveness(exp) else "0"
            args += (key, exp.deadline_ms, live, codec.encode(exp))
        keys = self.keys.for_run(run)
        args += (self.findings_maxlen, self._epoch(keys))
        return ScriptCall(Script.ADD_EXPECTATIONS, keys, args, "add_expectations")

    def add_ack(self, run_id: uuid.UUID | str, ack: DomainAck) -> ScriptCall:
        """Record one ack (the hot path: one call, no extra round trip)."""
        group = single_ack_group(self.keys, run_id, ack)
        return add_acks_call((group,), self.ack_settings, "add_ack")

    def add_acks(self, run_id: uuid.UUID | str, acks: Iterable[DomainAck]) -> ScriptCall:
        """Record many acks of one run in one call."""
        group = ack_group(self.keys, run_id, acks)
        return add_acks_call((group,), self.ack_settings, "add_acks")

    def update_status(
        self, run_id: uuid.UUID | str, domain: str, action: str, status: AuditStatus | str
    ) -> ScriptCall:
        """Move one expectation along the state machine."""
        run = canonical_run_id(run_id)
        key = action_key(domain, action)
        keys = self.keys.for_run(run)
        status_value = check_status(status).value
        args = (self._ttl_ms, run, key, status_value, self.findings_maxlen, self._epoch(keys))
        return ScriptCall(Script.UPDATE_STATUS, keys, args, "update_expectation_status")

    def clear_run(self, run_id: uuid.UUID | str) -> ScriptCall:
        """Delete every key of one run and its index entry."""
        run = canonical_run_id(run_id)
        keys = self.keys.for_run(run)
        script_keys = (keys.pending, *keys.run_keys, keys.epoch)
        return ScriptCall(Script.CLEAR_RUN, script_keys, (run, self._epoch(keys)), "clear_run")

    def end_run(self, run_id: uuid.UUID | str, limit: int = DEFAULT_SWEEP_MARKS) -> ScriptCall:
        """Mark the run's PENDING expectations MISSING now (at most ``limit``), then judge it."""
        run = canonical_run_id(run_id)
        keys = self.keys.for_run(run)
        args = (self._ttl_ms, run, sweep_marks(limit), self.findings_maxlen, self._epoch(keys))
        return ScriptCall(Script.END_RUN, keys, args, "end_run")

    def sweep_run(self, run_id: uuid.UUID | str, limit: int = DEFAULT_SWEEP_MARKS) -> ScriptCall:
        """Mark one run's overdue PENDING expectations MISSING (at most ``limit``)."""
        run = canonical_run_id(run_id)
        keys = self.keys.for_run(run)
        args = (self._ttl_ms, run, sweep_marks(limit), self.findings_maxlen, self._epoch(keys))
        return ScriptCall(Script.SWEEP_RUN, keys, args, "sweep")

    def record_finding(
        self, run_id: uuid.UUID | str, kind: str, fields: Sequence[tuple[str, str]]
    ) -> ScriptCall:
        """Append a STALE or INCOMPLETE verdict to the run's shard stream (unless it is
        the run's last pushed verdict already)."""
        run = canonical_run_id(run_id)
        if kind not in ("STALE", "INCOMPLETE"):
            raise InvalidInputError(f"a recorded finding is STALE or INCOMPLETE, not {kind!r}")
        args: list[Arg] = [self.findings_maxlen, kind, run]
        for name, value in fields:
            args += (name, value)
        run_keys = self.keys.for_run(run)
        args.append(self._epoch(run_keys))
        keys = (run_keys.st, run_keys.findings, run_keys.epoch)
        return ScriptCall(Script.RECORD_FINDING, keys, args, "record_finding")

    def _epoch(self, keys: RunKeys) -> str:
        """The epoch a write to ``keys``' shard carries ("" before the store opened: the
        script refuses it as RAC_BADARG)."""
        return self.epochs.get(keys.epoch, "")

    # -- reads ----------------------------------------------------------------------
    def read_expectations(self, run_id: uuid.UUID | str) -> ScriptCall:
        """A consistent snapshot of one run's expectations and statuses."""
        keys = self.keys.for_run(canonical_run_id(run_id)).run_keys
        return ScriptCall(Script.READ_EXPECTATIONS, keys[:2], (), "get_expectations")

    def read_run(self, run_id: uuid.UUID | str) -> ScriptCall:
        """A consistent snapshot of one run for the reconciler (with server time)."""
        keys = self.keys.for_run(canonical_run_id(run_id)).run_keys
        return ScriptCall(Script.READ_RUN, keys[:4], (), "reconcile")

    def read_acks(self, run_id: uuid.UUID | str) -> CommandCall:
        """The run's encoded acks, in arrival order."""
        key = self.keys.for_run(canonical_run_id(run_id)).acks
        return CommandCall((("LRANGE", key, 0, -1),), "get_acks")

    def run_exists(self, run_id: uuid.UUID | str) -> CommandCall:
        """How many of the keys whose existence means the run is in the store exist."""
        keys = self.keys.for_run(canonical_run_id(run_id))
        return CommandCall((("EXISTS", keys.exp, keys.st, keys.acks),), "load_from_redis")

    def server_time(self, operation: str = "server_time") -> CommandCall:
        """The server's clock (``TIME``)."""
        return CommandCall((("TIME",),), operation)

    def pending_runs(
        self, before_ms: int | None, limit: int | None, operation: str, inclusive: bool = False
    ) -> CommandCall:
        """Each shard's runs due before ``before_ms`` (all if None), earliest first.

        ``inclusive`` keeps runs due exactly at ``before_ms`` too. ``limit`` bounds
        each shard's read (None: no bound); :func:`parse_pending` merges the shards.
        """
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise InvalidInputError(f"limit must be a non-negative int: {limit!r}")
        before = "+inf"
        if before_ms is not None:
            before = str(before_ms) if inclusive else f"({before_ms}"
        bound: tuple[Arg, ...] = () if limit is None else ("LIMIT", 0, limit)
        commands = [
            ("ZRANGEBYSCORE", key, "-inf", before, "WITHSCORES", *bound)
            for key in self.keys.all_pending()
        ]
        return CommandCall(commands, operation)

    def pending_run_ids(self, due_before: datetime | int | None, limit: int | None) -> CommandCall:
        """``get_pending_run_ids``: runs due at or before ``due_before`` (all if None)."""
        before = None if due_before is None else epoch_ms(due_before)
        return self.pending_runs(before, limit, "get_pending_run_ids", inclusive=True)

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
            status, acked_at, late, _live = record.decode().split(KEY_SEPARATOR)
            exp.status = AuditStatus(status)
            exp.acked_at = ms_to_datetime(int(acked_at)) if acked_at != "0" else None
            exp.late = late == "1"
        result.append(exp)
    result.sort(key=lambda e: (e.created_at, e.domain, e.action))
    return result


def parse_acks(replies: Sequence[Sequence[bytes]]) -> list[DomainAck]:
    """Acks in arrival order, from the reply of :meth:`StoreCore.read_acks`."""
    return [codec.decode_ack(payload) for payload in replies[0]]


def parse_count(reply: Any) -> int:
    """An integer reply."""
    return int(reply)


def parse_server_time(replies: Sequence[Any]) -> int:
    """The reply of :meth:`StoreCore.server_time` as epoch milliseconds."""
    seconds, micros = replies[0]
    return int(seconds) * 1000 + int(micros) // 1000


def text(value: Any) -> str:
    """A reply value as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def score_pairs(reply: Sequence[Any]) -> list[tuple[str, int]]:
    """A WITHSCORES range as (member, score) pairs, flat (RESP2) or nested (RESP3)."""
    pairs: Iterable[tuple[Any, Any]] = reply
    if reply and not isinstance(reply[0], list | tuple):
        pairs = zip(reply[::2], reply[1::2], strict=True)
    return [(text(member), int(float(score))) for member, score in pairs]


def parse_run_ids(replies: Sequence[Sequence[Any]], limit: int | None) -> list[str]:
    """The run ids of a :meth:`StoreCore.pending_run_ids` reply, earliest due first."""
    return [run for run, _ in parse_pending(replies, limit)]


def parse_pending(replies: Sequence[Sequence[Any]], limit: int | None) -> list[tuple[str, int]]:
    """(run id, earliest due ms) of every shard of a :meth:`StoreCore.pending_runs` reply.

    Earliest due first, cut at ``limit`` (None: all).
    """
    merged = heapq.merge(*map(score_pairs, replies), key=lambda pair: pair[1])
    return list(merged if limit is None else itertools.islice(merged, limit))
