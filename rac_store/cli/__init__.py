"""The ``rac-store`` command line: one sub-command (or a few related ones) per module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..errors import RACStoreError
from . import acl, cluster_layout, demo, inspect, notify, sweep, web

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrations() -> list[Register]:
    """Every sub-command's ``register`` function (one module each)."""
    return [
        demo.register,
        inspect.register,
        sweep.register,
        acl.register,
        cluster_layout.register,
        notify.register,
        web.register,
    ]


def build_parser() -> argparse.ArgumentParser:
    """The parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="rac-store", description="Runtime Audit Contract store: expectations, acks, findings."
    )
    parser.add_argument("--version", action="version", version=f"rac-store {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _registrations():
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; its return value is the exit code (2 for a store error)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except RACStoreError as exc:
        print(f"rac-store: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
