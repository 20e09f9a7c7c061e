"""``rac-store acl``: print the least-privilege ``ACL SETUSER`` lines of a store's users."""

from __future__ import annotations

import argparse

from ..acl import alerting_rules, inspector_rules, setuser_line, worker_rules
from .common import EXIT_OK, add_json_option, prefix_word
from .output import emit_json


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``acl`` to the CLI."""
    parser = commands.add_parser("acl", help="print least-privilege ACL SETUSER lines")
    parser.add_argument("--prefix", type=prefix_word, default="rac", help="the store's key prefix")
    for role, who in (
        ("worker", "the worker's"),
        ("inspector", "the inspector's"),
        ("alerting", "the findings consumer's (notify's)"),
    ):
        parser.add_argument(f"--{role}", type=_user, default=f"rac-{role}", help=f"{who} user name")
    parser.add_argument(
        "--wait-aof", action="store_true", help="workers use wait_aof (Redis >= 7.2)"
    )
    add_json_option(parser)
    parser.set_defaults(run=_print_lines)


def _user(text: str) -> str:
    if not text or any(c.isspace() or not c.isprintable() for c in text):
        raise argparse.ArgumentTypeError(f"a user name is one word without spaces: {text!r}")
    return text


def _print_lines(args: argparse.Namespace) -> int:
    lines = {
        "worker": setuser_line(args.worker, worker_rules(args.prefix, wait_aof=args.wait_aof)),
        "inspector": setuser_line(args.inspector, inspector_rules(args.prefix)),
        "alerting": setuser_line(args.alerting, alerting_rules(args.prefix)),
    }
    if args.json:
        emit_json(lines)
    else:
        print("\n".join(lines.values()))
    return EXIT_OK
