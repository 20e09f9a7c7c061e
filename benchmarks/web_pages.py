"""The dashboard's pages: server time per page against a 50 ms budget, on a big store.

In a namespace of its own on the run's Redis it declares ``web_pending`` runs
(half already past due, half due within the hour: all in the pending indexes),
records ``web_findings`` INCOMPLETE events in the findings streams (the real
``record_finding`` script), and one run with ``web_acks`` acks over 100
expectations. It then serves the dashboard in process (its ASGI app, over a
read-only async store, no network between client and app) and times each page
``web_requests`` times: the app's own time (its ``Server-Timing`` header, from
the request reaching the route to the rendered body) and the time the client
waited. The figure is the p95 of the app's time over the 50 ms budget.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

from rac_store import AsyncAuditStore, AuditExpectation, AuditStore, create_domain_ack
from rac_store.scripts import ScriptCall, load_scripts

from .context import Bench
from .measure import percentile
from .report import Figure, Goal, say

BUDGET_US = 50_000.0
"""The target: each page within 50 ms of server time (p95)."""
BATCH = 1000
"""Script calls per pipeline while filling the store."""
EXPECTATIONS = 100
"""Expectations of the run with many acks (each acked many times)."""


def _pipelined(store: AuditStore, calls: Iterator[ScriptCall]) -> None:
    """Send script calls as EVALSHA in pipelines of BATCH (the scripts are loaded first)."""
    scripts = load_scripts(False)
    client = store.client
    for loaded in scripts.values():
        client.script_load(loaded.text)
    pipe = client.pipeline(transaction=False)
    queued = 0
    for call in calls:
        pipe.execute_command(*scripts[call.script].command(call))
        queued += 1
        if queued == BATCH:
            pipe.execute()
            queued = 0
    if queued:
        pipe.execute()


def _pending_calls(store: AuditStore, runs: int) -> Iterator[ScriptCall]:
    for i in range(runs):
        run = uuid.uuid4()
        deadline = 0 if i % 2 == 0 else 60_000 + (i * 37) % 3_540_000
        yield store.core.add_expectations(run, [AuditExpectation(run, "bench", "step", deadline)])


def _finding_calls(store: AuditStore, findings: int) -> Iterator[ScriptCall]:
    fields = [("missing", "1"), ("failed", "0"), ("drift", "0"), ("stale", "0")]
    for _ in range(findings):
        yield store.core.record_finding(uuid.uuid4(), "INCOMPLETE", fields)


def busy_run(store: AuditStore, acks: int) -> str:
    """A run of EXPECTATIONS expectations and ``acks`` distinct acks, in batches of 1,000."""
    run = uuid.uuid4()
    store.add_expectations(
        run, [AuditExpectation(run, "bench", f"step_{i}", 3_600_000) for i in range(EXPECTATIONS)]
    )
    for start in range(0, acks, 1000):
        batch = [
            create_domain_ack(run, "bench", f"step_{i % EXPECTATIONS}", result_id=f"R{i}")
            for i in range(start, min(acks, start + 1000))
        ]
        store.add_acks(run, batch)
    return str(run)


def fill(bench: Bench) -> tuple[AuditStore, str]:
    """The store the pages read, filled; and the run with many acks."""
    sizes = bench.sizes
    store = bench.store("web", metrics=False, findings_maxlen=max(10_000, sizes.web_findings))
    _pipelined(store, _pending_calls(store, sizes.web_pending))
    _pipelined(store, _finding_calls(store, sizes.web_findings))
    return store, busy_run(store, sizes.web_acks)


async def _time_pages(
    bench: Bench, prefix: str, paths: dict[str, str], requests: int
) -> dict[str, dict[str, list[float]]]:
    import httpx

    from rac_store.web.app import WebOptions, create_app

    store = AsyncAuditStore.from_url(bench.url, prefix=prefix, read_only=True, metrics=False)
    await store.initialize()
    app = create_app(store, WebOptions(close_store=False))
    samples: dict[str, dict[str, list[float]]] = {k: {"app": [], "wall": []} for k in paths}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for path in paths.values():  # warm up: templates compiled, connections open
            (await client.get(path)).raise_for_status()
        loop = asyncio.get_running_loop()
        for _ in range(requests):
            for key, path in paths.items():  # interleaved: drift hits every page alike
                started = loop.time()
                response = await client.get(path)
                wall = (loop.time() - started) * 1e6
                response.raise_for_status()
                timing = response.headers["server-timing"]
                samples[key]["app"].append(float(timing.partition("dur=")[2]) * 1000)
                samples[key]["wall"].append(wall)
    await store.aclose()
    return samples


def figures(bench: Bench) -> list[Figure]:
    """p95 of each page's server time over the 50 ms budget (none without the web extra)."""
    try:
        import httpx  # noqa: F401
        import starlette  # noqa: F401
    except ImportError:
        say("    skipped: the dashboard needs pip install 'rac-store[web]' httpx")
        return []
    sizes = bench.sizes
    store, run = fill(bench)
    pending = len(store.get_pending_run_ids())
    say(f"    {pending:,} runs pending, {sizes.web_findings:,} findings, {sizes.web_acks:,} acks")
    deep = max(0, sizes.web_acks // 25 - 1)
    pages = {
        "overview": ("/", f"overview: {pending:,} pending runs, {sizes.web_findings:,} findings"),
        "run": (f"/runs/{run}", f"run page: {sizes.web_acks:,} acks, first page of 25"),
        "run_deep": (f"/runs/{run}?acks_page={deep}", "run page: last page of acks"),
        "findings": ("/findings", "findings page, newest 25"),
        "findings_filtered": ("/findings?type=STALE", "findings page filtered (no match)"),
    }
    paths = {key: path for key, (path, _) in pages.items()}
    samples = asyncio.run(_time_pages(bench, store.core.keys.prefix, paths, sizes.web_requests))
    store.close()
    found = []
    for key, (path, title) in pages.items():
        app, wall = samples[key]["app"], samples[key]["wall"]
        p95 = percentile(app, 0.95)
        say(
            f"    {key}: app p50 {percentile(app, 0.5) / 1000:.1f} ms, p95 {p95 / 1000:.1f} ms;"
            f" client p95 {percentile(wall, 0.95) / 1000:.1f} ms"
        )
        detail: dict[str, Any] = {
            "path": path,
            "requests": len(app),
            "app_p50_us": percentile(app, 0.5),
            "app_p95_us": p95,
            "wall_p50_us": percentile(wall, 0.5),
            "wall_p95_us": percentile(wall, 0.95),
            "pending_runs": pending,
            "findings": sizes.web_findings,
            "acks": sizes.web_acks,
        }
        found.append(
            Figure(
                f"web_{key}",
                f"web {title}: p95 / 50 ms",
                p95,
                BUDGET_US,
                "us",
                Goal("<=", 1),
                detail,
            )
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.web_pages [--quick]``: this step alone, on its own redis-server."""
    import argparse

    from .context import FULL, QUICK
    from .report import table
    from .servers import run_redis

    parser = argparse.ArgumentParser(prog="python -m benchmarks.web_pages")
    parser.add_argument("--quick", action="store_true", help="10,000 runs and findings")
    args = parser.parse_args(argv)
    say(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with run_redis(None) as (url, own):
        found = figures(Bench(url, QUICK if args.quick else FULL, own, quick=args.quick))
    print(table(list(found)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
