"""Where a store's shards live on a Redis Cluster (``rac-store cluster-layout`` prints it).

Each shard ``s`` is one hash tag ``{s}``, so one hash slot, so one primary:
a shard never spans nodes, and a node's share of the work is the share of
shards whose slot it serves. With ``S`` shards at most ``S`` primaries hold
data; see docs/cluster.md for choosing ``S``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.crc import key_slot

from ..errors import InvalidInputError
from ..keys import KeySpace
from . import is_cluster

UNEVEN = 1.25
"""A primary holding more than this times its fair share of shards is reported."""


def shard_slots(keys: KeySpace) -> list[int]:
    """The hash slot of every shard, in shard order."""
    return [key_slot(keys.pending(shard).encode()) for shard in range(keys.shards)]


def shard_owners(client: Any, keys: KeySpace) -> dict[str, list[int]]:
    """Primary ``host:port`` -> the shards it serves now, from a RedisCluster's slot map."""
    if not is_cluster(client):
        raise InvalidInputError(f"not a Redis Cluster client: {type(client).__name__}")
    owners: dict[str, list[int]] = {node.name: [] for node in client.get_primaries()}
    for shard in range(keys.shards):
        node = client.get_node_from_key(keys.pending(shard))
        owners.setdefault(node.name, []).append(shard)
    return owners


def imbalance(owners: Mapping[str, Sequence[int]]) -> float:
    """The busiest primary's shards / the fair share (1.0 is perfectly even)."""
    total = sum(len(shards) for shards in owners.values())
    if not owners or total == 0:
        return 1.0
    return max(len(shards) for shards in owners.values()) / (total / len(owners))


def layout_lines(owners: Mapping[str, Sequence[int]], keys: KeySpace) -> list[str]:
    """A human-readable report of ``owners``."""
    lines = [f"{keys.shards} shards (prefix {keys.prefix!r}) over {len(owners)} primaries"]
    for name, shards in sorted(owners.items()):
        share = len(shards) / keys.shards
        listed = ", ".join(map(str, shards)) or "-"
        lines.append(f"  {name:<22} {len(shards):>5} shards {share:6.1%}   {listed}")
    ratio = imbalance(owners)
    lines.append(f"busiest primary: {ratio:.2f} x its fair share")
    if ratio > UNEVEN:
        lines.append(
            "uneven: move single shard slots between primaries (redis-cli --cluster reshard) "
            "or choose another shard count (a migration; see docs/cluster.md)"
        )
    return lines
