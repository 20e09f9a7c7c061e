"""The ``add_acks.lua`` call, built in one place for single acks, batches and auto-pipelining.

``add_acks.lua`` takes the acks of one or more runs of one shard: KEYS are the
shard's pending index, five keys per run, then the shard's findings stream and
its epoch key; ARGV are the TTL, a call token and the number of runs, then per
run its id and ack count followed by four values per ack, then the
findings-stream bound and the epoch the store opened with (see the script's
header). :func:`ack_group` validates the acks of one run and encodes them
once; :func:`add_acks_call` lays one or more groups of a shard out as that
call; :func:`merge_by_shard` groups many calls' worth of groups (the
auto-pipeline's queue) into one call per shard.

Every built call carries a fresh call token: a re-send of that call (after a
lost reply) carries the same one, so its acks report their first outcome again
rather than DUPLICATE (docs/reliability.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from . import codec
from .keys import KeySpace, RunKeys
from .models import DomainAck
from .scripts import Arg, Script, ScriptCall
from .validation import canonical_run_id, check_ack, check_batch

CALL_TOKEN_BYTES = 8
VALUES_PER_ACK = 4
"""ARGV values per ack: ack id, expectation key, ok flag, encoded ack."""


class AckGroup(NamedTuple):
    """Validated, encoded acks of one run, ready to join an ``add_acks`` call."""

    keys: RunKeys
    run_id: str
    values: Sequence[Arg]
    """``VALUES_PER_ACK`` values per ack, in order."""
    acks: int
    """How many acks the group holds."""


class CallSettings(NamedTuple):
    """What every ``add_acks`` call of one store carries besides its acks."""

    ttl_ms: int
    findings_maxlen: int
    epochs: Mapping[str, str] = MappingProxyType({})
    """Epoch key -> the epoch the store opened with: the store core's own dict, filled in
    place when the store opens (a call built before that carries "" and is refused)."""


def call_token() -> bytes:
    """Random bytes naming one logical call; a re-send carries the same ones."""
    return os.urandom(CALL_TOKEN_BYTES)


def ok_flag(ack: DomainAck) -> str:
    """The ``ok`` value of an ack: "1" success, "2" rolled back, "0" any other failure.

    A rollback undoes a success (the expectation goes from ACKED to FAILED); a plain
    failure after a success leaves the expectation ACKED (docs/state-machine.md).
    """
    if ack.is_rolled_back:
        return "2"
    return "1" if ack.is_success else "0"


def ack_group(keyspace: KeySpace, run_id: object, acks: Iterable[DomainAck]) -> AckGroup:
    """Validate ``acks`` of one run (InvalidInputError before anything is sent) and encode them."""
    run = canonical_run_id(run_id)
    batch = check_batch(acks, "acks")
    values: list[Arg] = []
    for ack in batch:
        key = check_ack(run, ack)
        values += (ack.id.bytes, key, ok_flag(ack), codec.encode(ack))
    return AckGroup(keyspace.for_run(run), run, values, len(batch))


def single_ack_group(keyspace: KeySpace, run_id: object, ack: DomainAck) -> AckGroup:
    """:func:`ack_group` of one ack (the hot path: no batch list)."""
    run = canonical_run_id(run_id)
    key = check_ack(run, ack)
    values = (ack.id.bytes, key, ok_flag(ack), codec.encode(ack))
    return AckGroup(keyspace.for_run(run), run, values, 1)


def add_acks_call(
    groups: Sequence[AckGroup], settings: CallSettings, operation: str = "add_acks"
) -> ScriptCall:
    """One ``add_acks`` call for ``groups`` (all of one shard, at most one per run)."""
    if len(groups) == 1:
        # The hot path, without building lists: RunKeys holds the pending index, the run's
        # five keys, the findings stream and the epoch key in that order, the KEYS of a
        # one-run call.
        (group,) = groups
        one_run = (
            settings.ttl_ms,
            call_token(),
            1,
            group.run_id,
            group.acks,
            *group.values,
            settings.findings_maxlen,
            settings.epochs.get(group.keys.epoch, ""),
        )
        return ScriptCall(Script.ADD_ACKS, group.keys, one_run, operation)
    first = groups[0].keys
    keys: list[str] = [first.pending]
    args: list[Arg] = [settings.ttl_ms, call_token(), len(groups)]
    for group in groups:
        if group.keys.pending != first.pending:
            raise ValueError("the acks of one add_acks call must share a shard")
        keys += group.keys.run_keys
        args += (group.run_id, group.acks)
        args += group.values
    keys += (first.findings, first.epoch)
    args += (settings.findings_maxlen, settings.epochs.get(first.epoch, ""))
    return ScriptCall(Script.ADD_ACKS, keys, args, operation)


@dataclass(frozen=True, slots=True)
class MergedCall:
    """One ``add_acks`` call and, per outcome of its reply, the index of the group it answers."""

    call: ScriptCall
    owners: Sequence[int]


def merge_by_shard(
    groups: Sequence[AckGroup], settings: CallSettings, operation: str = "add_ack"
) -> list[MergedCall]:
    """One ``add_acks`` call per shard for ``groups``, in order of first use.

    Groups of one run join (their acks keep submission order); ``owners[j]``
    is the index in ``groups`` of the j-th outcome of the merged reply.
    """
    shards: dict[str, dict[str, list[int]]] = {}
    for index, group in enumerate(groups):
        shards.setdefault(group.keys.pending, {}).setdefault(group.run_id, []).append(index)
    merged = []
    for runs in shards.values():
        joined: list[AckGroup] = []
        owners: list[int] = []
        for members in runs.values():
            values: list[Arg] = []
            for index in members:
                values += groups[index].values
                owners += [index] * groups[index].acks
            first = groups[members[0]]
            joined.append(AckGroup(first.keys, first.run_id, values, len(values) // VALUES_PER_ACK))
        merged.append(MergedCall(add_acks_call(joined, settings, operation), owners))
    return merged
