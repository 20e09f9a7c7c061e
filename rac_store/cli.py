"""The ``rac-store`` command line: one sub-command per module, registered here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__, acl, bench, cli_cluster, cli_inspect, cli_sweep, demo
from .errors import RACStoreError

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrations() -> list[Register]:
    """Every sub-command's ``register`` function (one module each)."""
    return [
        demo.register,
        cli_inspect.register,
        cli_sweep.register,
        acl.register,
        cli_cluster.register,
        bench.register,
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


if __name__ == "__main__":
    sys.exit(main())
