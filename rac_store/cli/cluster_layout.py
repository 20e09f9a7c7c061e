"""``rac-store cluster-layout``: which Redis Cluster primary serves each shard of a store."""

from __future__ import annotations

import argparse
from typing import Any

from ..cluster.layout import layout_lines, shard_owners
from ..connect import client_from_url
from ..keys import KeySpace


def _stored_shards(client: Any, prefix: str) -> int | None:
    raw = client.hget(f"{prefix}:meta", "shards")
    return int(raw) if raw is not None else None


def run_layout(url: str, prefix: str, shards: int | None) -> int:
    """Print the layout of the store ``prefix`` on the cluster at ``url``."""
    client = client_from_url(url, cluster=True)
    try:
        count = shards or _stored_shards(client, prefix) or 16
        keys = KeySpace(prefix, count)
        lines = layout_lines(shard_owners(client, keys), keys)
    finally:
        client.close()
    print("\n".join(lines))
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cluster-layout`` to the CLI."""
    parser = commands.add_parser(
        "cluster-layout", help="show which Redis Cluster primary serves each shard"
    )
    parser.add_argument(
        "--redis-url",
        required=True,
        help="any node of the cluster (redis:// or redis+cluster://)",
    )
    parser.add_argument("--prefix", default="rac", help="the store's key prefix (default rac)")
    parser.add_argument(
        "--shards",
        type=int,
        help="shard count to show (default: the one the store recorded, else 16)",
    )
    parser.set_defaults(run=lambda args: run_layout(args.redis_url, args.prefix, args.shards))
