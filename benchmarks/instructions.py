"""Client instructions per call under valgrind's callgrind: steady on a busy machine.

``python -m benchmarks.instructions [--source DIR ...] [--kinds ack build ping]``
starts a private redis-server, then for each source tree (default: this checkout;
another revision: ``git archive REV | tar -x -C DIR``) runs a client loop under
``valgrind --tool=callgrind`` twice, with ``calls`` and ``3 * calls`` calls, and prints
the difference per call: the instructions one call costs the client process, every
set-up cost cancelled out. The kinds: ``ack`` (``AuditStore.add_ack`` answering a
PENDING expectation), ``build`` (``StoreCore.add_ack``: the call built, nothing sent),
``ping`` (redis-py's ``Redis.ping``). Kernel work (the socket's system calls) and the
server are not counted. Needs ``valgrind`` on PATH; a loop takes ~30 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

KINDS = ("ack", "build", "ping")
PREPARED = 6000
"""Acks prepared by every loop (declared on the server), whatever the count timed."""


def loop(url: str, kind: str, calls: int) -> None:
    """The client loop callgrind measures: prepare PREPARED acks, then ``calls`` calls."""
    import redis

    from rac_store import AuditExpectation, AuditStore, DomainAck

    client = redis.Redis.from_url(url)
    store = AuditStore(client, prefix=f"icount{uuid.uuid4().hex[:6]}")
    items = []
    for _ in range(PREPARED // 50):
        run = uuid.uuid4()
        names = [f"a{i}" for i in range(50)]
        store.add_expectations(run, [AuditExpectation(run, "bench", a, 3_600_000) for a in names])
        items += [(run, DomainAck(run, "bench", a)) for a in names]
    store.add_ack(*items.pop())  # the script is loaded, the connection open
    client.ping()
    if kind == "ack":
        for run, ack in items[:calls]:
            store.add_ack(run, ack)
    elif kind == "build":
        for run, ack in items[:calls]:
            store.core.add_ack(run, ack)
    else:
        for _ in range(calls):
            client.ping()


def instructions(source: Path, url: str, kind: str, calls: int) -> int:
    """Instructions callgrind counts for one loop of ``calls`` calls with ``source`` first."""
    with tempfile.TemporaryDirectory() as workdir:
        out = Path(workdir) / "callgrind.out"
        env = dict(os.environ, PYTHONPATH=str(source), PYTHONHASHSEED="0")
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(Path(__file__).resolve()),  # as a script: rac_store comes from ``source``
                "--loop",
                url,
                kind,
                str(calls),
            ],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind failed:\n{done.stderr[-3000:]}")
        return int(found.group(1))


def per_call(source: Path, url: str, kind: str, calls: int) -> float:
    """Instructions of one call: (3 * calls loop - calls loop) / (2 * calls)."""
    few = instructions(source, url, kind, calls)
    many = instructions(source, url, kind, 3 * calls)
    return (many - few) / (2 * calls)


def main(argv: Sequence[str] | None = None) -> int:
    """Print instructions per call of each kind for each source tree."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("--source", type=Path, action="append", help="a source tree (repeat)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--loop", nargs=3, metavar=("URL", "KIND", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loop:
        url, kind, calls = args.loop
        loop(url, kind, int(calls))
        return 0
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    from tests.support.redis_server import running_redis

    sources = args.source or [Path(__file__).resolve().parent.parent]
    with running_redis() as server:
        for kind in args.kinds:
            for source in sources:
                count = per_call(source.resolve(), server.url, kind, args.calls)
                print(f"{kind:6} {count:>10,.0f} instructions per call   {source}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
