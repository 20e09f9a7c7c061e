"""``rac-store web``: serve the read-only operator dashboard (needs ``rac-store[web]``)."""

from __future__ import annotations

import argparse
import sys

from ..loopback import is_loopback
from .common import EXIT_ERROR, add_prefix_option, add_url_option, fail, positive

INSTALL_HINT = "rac-store web needs the web extra: pip install 'rac-store[web]'"


def run_web(args: argparse.Namespace) -> int:
    """Check the bind address, import the web stack, serve until stopped."""
    if not is_loopback(args.host):
        if not args.allow_remote:
            return fail(
                f"refusing to serve on {args.host!r}: the dashboard has no login; bind to"
                " loopback (the default) or pass --allow-remote behind your own access control"
            )
        print(
            f"rac-store web: WARNING: serving on {args.host!r} with no login: anyone who can"
            " reach this port can read every run, ack and finding of the store",
            file=sys.stderr,
            flush=True,
        )
    try:
        from ..web.server import serve  # noqa: PLC0415  (the optional extra, imported lazily)
    except ImportError as exc:
        print(f"rac-store: {INSTALL_HINT} ({exc.name or exc} is missing)", file=sys.stderr)
        return EXIT_ERROR
    return serve(args.redis_url or None, args.prefix, args.host, args.port)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``web`` to the CLI."""
    parser = commands.add_parser(
        "web", help="serve the read-only operator dashboard (needs rac-store[web])"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=positive, default=8080, help="port (8080)")
    add_url_option(
        parser,
        "the store's Redis (default: $RAC_REDIS_URL; none: an embedded store with the demo's data)",
    )
    add_prefix_option(parser)
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (the dashboard has no login of its own)",
    )
    parser.set_defaults(run=run_web)
