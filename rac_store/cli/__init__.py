"""The ``rac-store`` command line: one sub-command (or a few related ones) per module.

How a command is written, and the rules it follows (options, opening the store,
failures, JSON output, URLs): :mod:`rac_store.cli.common`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from .. import __version__
from . import acl, cluster_layout, demo, inspect, notify, serve, sweep, watch, web
from .common import run_command, warnings_said_once

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrations() -> list[Register]:
    """Every sub-command's ``register`` function (one module each)."""
    return [
        demo.register,
        serve.register,
        inspect.register,
        sweep.register,
        watch.register,
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
    """Run one sub-command; its return value is the exit code (rac_store.cli.common)."""
    args = build_parser().parse_args(argv)
    with warnings_said_once():
        return run_command(args)
