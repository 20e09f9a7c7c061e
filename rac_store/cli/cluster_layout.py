"""``rac-store cluster-layout``: which Redis Cluster primary serves each shard of a store."""

from __future__ import annotations

import argparse
from typing import Any

from ..cluster.layout import layout_lines, shard_owners
from ..keys import KeySpace
from .common import (
    EXIT_OK,
    add_json_option,
    add_prefix_option,
    add_timeout_option,
    add_url_option,
    command_timeout,
    connect,
    positive,
    require_url,
)
from .output import emit_json


def _stored_shards(client: Any, prefix: str) -> int | None:
    raw = client.hget(f"{prefix}:meta", "shards")
    return int(raw) if raw is not None else None


def run_layout(args: argparse.Namespace) -> int:
    """Print the layout of the store ``--prefix`` on the cluster at ``--redis-url``."""
    url = require_url(args)
    if "+cluster://" not in url:
        url = url.replace("://", "+cluster://", 1)  # any node of the cluster is a seed
    client = connect(url, command_timeout(args))
    try:
        count = args.shards or _stored_shards(client, args.prefix) or 16
        keys = KeySpace(args.prefix, count)
        owners = shard_owners(client, keys)
        lines = layout_lines(owners, keys)
    finally:
        client.close()
    if args.json:
        emit_json({"prefix": args.prefix, "shards": count, "owners": owners})
    else:
        print("\n".join(lines))
    return EXIT_OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cluster-layout`` to the CLI."""
    parser = commands.add_parser(
        "cluster-layout", help="show which Redis Cluster primary serves each shard"
    )
    add_url_option(parser, "any node of the cluster (redis:// or redis+cluster://)", required=True)
    add_prefix_option(parser)
    parser.add_argument(
        "--shards",
        type=positive,
        help="shard count to show (default: the one the store recorded, else 16)",
    )
    add_timeout_option(parser)
    add_json_option(parser)
    parser.set_defaults(run=run_layout)
