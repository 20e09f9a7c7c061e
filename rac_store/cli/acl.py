"""``rac-store acl``: print the least-privilege ``ACL SETUSER`` lines of a store's users."""

from __future__ import annotations

import argparse

from ..acl import alerting_rules, inspector_rules, setuser_line, worker_rules


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``acl`` to the CLI."""
    parser = commands.add_parser("acl", help="print least-privilege ACL SETUSER lines")
    parser.add_argument("--prefix", default="rac", help="the store's key prefix")
    parser.add_argument("--worker", default="rac-worker", help="the worker's user name")
    parser.add_argument("--inspector", default="rac-inspector", help="the inspector's user name")
    parser.add_argument(
        "--alerting", default="rac-alerting", help="the findings consumer's user name (notify)"
    )
    parser.add_argument(
        "--wait-aof", action="store_true", help="workers use wait_aof (Redis >= 7.2)"
    )
    parser.set_defaults(run=_print_lines)


def _print_lines(args: argparse.Namespace) -> int:
    print(setuser_line(args.worker, worker_rules(args.prefix, wait_aof=args.wait_aof)))
    print(setuser_line(args.inspector, inspector_rules(args.prefix)))
    print(setuser_line(args.alerting, alerting_rules(args.prefix)))
    return 0
