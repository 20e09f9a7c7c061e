"""The benchmark runner, ``python -m benchmarks`` (run from the repository root).

It starts its own redis-server on a free loopback port (:mod:`benchmarks.servers`;
or uses ``--redis-url``, where it writes only keys under its own prefix and deletes
them at the end), measures every figure side by side in one process tree, prints
progress and a table of ratios against the goals, and writes the figures to a JSON file.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rac_store.cli.common import positive_number
from rac_store.server_checks import ALLOW_NO_PERSISTENCE_ENV

from . import (
    async_acks,
    cluster_bench,
    figures,
    levers,
    memory_per_run,
    peers,
    server_time,
    sweep_cost,
    targets,
    web_pages,
)
from .breakdown import profile, summary
from .context import FULL, QUICK, WORKERS, Bench
from .gang import Gang
from .report import Count, Figure, machine, markdown, say, table, write_json
from .servers import run_redis

Step = tuple[str, Callable[[Bench, Gang | None], list[Any]], bool]

STEPS: list[Step] = [
    ("add_ack vs PING latency", lambda b, g: figures.latency(b), False),
    ("flat cost (10,000 acks in the run)", lambda b, g: figures.flat_cost(b), False),
    ("batches of 100", lambda b, g: figures.batch(b), False),
    ("memory per ack", lambda b, g: figures.memory(b), False),
    ("pending index listing", lambda b, g: figures.pending_index(b), False),
    ("embedded vs Redis", lambda b, g: figures.embedded(b), False),
    ("rac-store serve vs Redis", lambda b, g: figures.served(b), False),
    ("deadline sweep per due run", lambda b, g: sweep_cost.figures(b), False),
    ("dashboard pages (rac-store web)", lambda b, g: web_pages.figures(b), False),
    ("asyncio: 1,000 concurrent callers", lambda b, g: async_acks.figures(b), False),
    ("Redis Cluster, 3 primaries (own servers)", lambda b, g: cluster_bench.figures(b), False),
    (f"{WORKERS} processes: throughput", lambda b, g: figures.throughput(b, _need(g)), True),
    (f"{WORKERS} processes: lost acks", lambda b, g: figures.lost_acks(b, _need(g)), True),
    ("peers: PING, SET, RQ, Celery, the original", lambda b, g: peers.figures(b), False),
    ("server time per ack (INFO commandstats)", lambda b, g: server_time.figures(b), False),
    ("memory per run (own server)", lambda b, g: memory_per_run.figures(b), False),
    ("send path: direct vs execute_command", lambda b, g: levers.figures(b), False),
]
"""(title, measure, needs the worker gang), in the order they run and appear in the table."""


def _need(gang: Gang | None) -> Gang:
    if gang is None:
        raise RuntimeError("this step needs the worker processes")
    return gang


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m benchmarks``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Side-by-side benchmarks of rac_store."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions, a 100,000-run index, 400 runs to sweep (< 60 s on 2 cores)",
    )
    parser.add_argument(
        "--redis-url",
        help="use this Redis instead of starting one (only keys under the"
        " run's own prefix are written, and deleted at the end)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("bench-results.json"),
        help="where to write the figures as JSON (default: %(default)s)",
    )
    parser.add_argument(
        "--scale",
        type=positive_number,
        default=1.0,
        help="multiply every repetition count (e.g. 0.1 for a smoke test)",
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the profile of add_ack (server and client)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    return parser


def _redis_version(bench: Bench) -> str:
    client = bench.client()
    try:
        return str(client.info("server").get("redis_version", "unknown"))
    finally:
        client.close()


def run(args: argparse.Namespace) -> int:
    """Measure everything, print the table, write the JSON file; 0 when it all ran."""
    started = time.monotonic()
    sizes = (QUICK if args.quick else FULL).scaled(args.scale)
    mode = "quick" if args.quick else "full"
    with run_redis(args.redis_url) as (url, own):
        bench = Bench(url, sizes, own, quick=args.quick)
        info = machine(_redis_version(bench))
        say(
            f"python -m benchmarks ({mode}): redis-server {info['redis_server']} at {url},"
            f" {info['nproc']} CPUs ({info['cpu_model']}), Python {info['python']}"
        )
        results: list[Figure | Count] = []
        gang: Gang | None = None
        try:
            for number, (title, measure, needs_gang) in enumerate(STEPS, 1):
                if needs_gang and gang is None:
                    say(f"  starting {WORKERS} worker processes (spawn)")
                    gang = Gang(WORKERS)
                say(f"[{number}/{len(STEPS)}] {title} ...")
                step_start = time.monotonic()
                found = measure(bench, gang)
                results.extend(found)
                for fig in found:
                    say(f"      {_line(fig)}")
                say(f"      ({time.monotonic() - step_start:.1f} s)")
            prof: dict[str, Any] = {}
            if not args.no_profile:
                say("[profile] where add_ack's time goes ...")
                prof = profile(bench)
        finally:
            if gang is not None:
                gang.close()
            if not own:
                bench.cleanup()
    elapsed = time.monotonic() - started
    goals = targets.build(results)
    contenders = _contenders(results)
    print()
    print(table(results))
    print("\nissue 16's targets (from the figures above):")
    print(targets.table(goals))
    if contenders:
        print("\none write each, side by side (peers step):")
        print("\n".join(peers.summary(contenders)))
    if prof:
        print()
        latency = {f.key: f for f in results if isinstance(f, Figure)}.get("latency_p50")
        ping = latency.detail["ping_p50_us"] if latency else None
        ack = latency.detail["add_ack_p50_us"] if latency else None
        print("\n".join(summary(prof, ping, ack)))
    write_json(args.output, mode, info, results, prof, elapsed, goals)
    if args.markdown:
        sections = [markdown(results), targets.markdown(goals)]
        if contenders:
            sections.append("\n".join(peers.summary(contenders)))
        args.markdown.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    print(f"\n{len(results)} figures in {elapsed:.0f} s; written to {args.output}")
    return 0


def _contenders(results: list[Figure | Count]) -> dict[str, dict[str, Any]]:
    """Every peer's p50 and p99, from the peers step (empty when it did not run)."""
    for fig in results:
        if isinstance(fig, Figure) and "contenders" in fig.detail:
            return dict(fig.detail["contenders"])
    return {}


def _line(fig: Figure | Count) -> str:
    if isinstance(fig, Count):
        return f"{fig.title}: ours {fig.ours}, baseline {fig.baseline}"
    return f"{fig.title.strip()}: {fig.ratio:.2f}" + (f" (goal {fig.goal})" if fig.goal else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks``."""
    # The runner's servers run without AOF on purpose (speed), and a server given with
    # --redis-url only holds a private prefix deleted at the end: no persistence warning
    # for the stores it opens (its worker processes inherit this too).
    os.environ.setdefault(ALLOW_NO_PERSISTENCE_ENV, "true")
    return run(build_parser().parse_args(argv))
