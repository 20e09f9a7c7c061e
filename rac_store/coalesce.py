"""Sans-I/O coalescing: many ``add_acks`` calls of one store become one call per shard.

``add_acks.lua`` accepts several runs of one shard in one call (KEYS[1] the
shard's pending index, then five keys per run, then the shard's findings
stream; ARGV ttl_ms, call token, R, then per run ``run_id, m`` and four values
per ack, then the findings-stream bound). :func:`merge_ack_calls` groups calls
built by :meth:`StoreCore.add_ack` / :meth:`StoreCore.add_acks` by shard and by
run, keeping each run's acks in submission order, and says which input call
each outcome of the merged reply belongs to.

A merged call carries the call token of the first call merged into it: a
re-send of the merged call (after a lost reply) carries the same token, so its
acks report their first outcome again rather than DUPLICATE.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .core import Arg, ScriptCall

_ACK_VALUES = 4
"""ARGV values per ack: ack id, expectation key, ok flag, encoded ack."""


@dataclass(frozen=True, slots=True)
class MergedCall:
    """One multi-run ``add_acks`` call and, per outcome of its reply, the input call it answers."""

    call: ScriptCall
    owners: Sequence[int]


class _RunGroup:
    """The acks of one run inside a merged call."""

    __slots__ = ("keys", "owners", "run_id", "values")

    def __init__(self, keys: Sequence[str], run_id: Arg) -> None:
        self.keys = keys
        self.run_id = run_id
        self.values: list[Arg] = []
        self.owners: list[int] = []


def merge_ack_calls(calls: Sequence[ScriptCall], operation: str = "add_ack") -> list[MergedCall]:
    """One ``add_acks`` call per shard for ``calls`` (single-run ``add_acks`` calls of one store).

    Shards appear in order of first use, runs likewise, and each run's acks keep
    their order; ``owners[j]`` is the index in ``calls`` of the j-th outcome.
    """
    shards: dict[str, dict[str, _RunGroup]] = {}
    heads: dict[str, tuple[str, Arg]] = {}  # shard -> (findings stream, call token)
    ttl: Arg | None = None
    maxlen: Arg | None = None
    for index, call in enumerate(calls):
        keys, args = call.keys, call.args
        if call.script != "add_acks" or args[2] != 1:
            raise ValueError(f"only single-run add_acks calls merge, got {call.operation}")
        if ttl is None:
            ttl, maxlen = args[0], args[-1]
        elif args[0] != ttl or args[-1] != maxlen:
            raise ValueError("calls of stores with different TTLs or stream bounds do not merge")
        runs = shards.setdefault(keys[0], {})
        heads.setdefault(keys[0], (keys[6], args[1]))
        group = runs.get(keys[1])
        if group is None:
            group = runs[keys[1]] = _RunGroup(keys[1:6], args[3])
        group.values += args[5:-1]
        if args[4] == 1:
            group.owners.append(index)
        else:
            group.owners += [index] * ((len(args) - 6) // _ACK_VALUES)
    return [
        _merge_shard(pending, heads[pending], runs.values(), (ttl, maxlen), operation)
        for pending, runs in shards.items()
    ]


def _merge_shard(
    pending: str,
    head: tuple[str, Arg],
    groups: Iterable[_RunGroup],
    bounds: tuple[Arg | None, Arg | None],
    operation: str,
) -> MergedCall:
    (stream, token), (ttl, maxlen) = head, bounds
    keys: list[str] = [pending]
    args: list[Arg] = [ttl if ttl is not None else 0, token, 0]
    owners: list[int] = []
    runs = 0
    for group in groups:
        runs += 1
        keys.extend(group.keys)
        args += (group.run_id, len(group.owners))
        args.extend(group.values)
        owners.extend(group.owners)
    args[2] = runs
    keys.append(stream)
    args.append(maxlen if maxlen is not None else 0)
    return MergedCall(ScriptCall("add_acks", keys, args, operation), owners)
