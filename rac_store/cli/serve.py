"""``rac-store serve``: the embedded store over the Redis protocol, for local processes."""

from __future__ import annotations

import argparse

from ..errors import InvalidInputError
from ..serve import EmbeddedRedisServer
from .common import EXIT_OK, UsageError, add_json_option, stop_on_signals
from .output import emit_json, say

DEFAULT_PORT = 6390


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535 (0: any free port): {text}")
    return value


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or Ctrl-C; the first line printed is the URL to connect to."""
    try:
        server = EmbeddedRedisServer(
            args.host,
            DEFAULT_PORT if args.port is None else args.port,
            unix=args.unix,
            allow_remote=args.allow_remote,
        )
    except InvalidInputError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        where = args.unix or f"{args.host}:{args.port}"
        raise UsageError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    with stop_on_signals() as stop, server:
        if args.json:
            emit_json({"url": server.url, "serving": True})
        else:
            print(f"serving the embedded store at {server.url}", flush=True)
        say(
            "data lives in this process's memory only and is gone when it stops;"
            " no authentication (Ctrl-C or SIGTERM stops it)"
        )
        stop.wait()
    say("serve: stopped")
    return EXIT_OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the CLI."""
    parser = commands.add_parser(
        "serve",
        help="share the embedded store between local processes over the Redis protocol",
        description="Serve the embedded store (the same Lua scripts, no Redis needed) so that"
        " several local processes share it: AuditStore.from_url(URL) in each. For development"
        " and CI; use a real Redis in production.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--port", type=_port, help=f"TCP port (default: {DEFAULT_PORT}; 0: any free port)"
    )
    where.add_argument("--unix", metavar="PATH", help="listen on this unix socket instead")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (there is no authentication)",
    )
    add_json_option(parser)
    parser.set_defaults(run=serve)
