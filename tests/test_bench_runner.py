"""The benchmark runner works (not its figures: speed is never asserted in tests)."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from benchmarks.baseline import LegacyAuditStore
from benchmarks.context import QUICK, Sizes
from benchmarks.gang import Gang, Task
from rac_store import create_domain_ack
from rac_store.bench import load_runner, unavailable
from rac_store.cli import build_parser

from .support.redis_server import RedisServer

FIGURES = {
    "latency_p50",
    "latency_p99",
    "script_floor_p50",
    "flat_cost",
    "flat_cost_baseline",
    "batch",
    "memory",
    "memory_with_expectations",
    "pending_index",
    "embedded",
    "throughput_8p",
    "lost_acks",
    "async_vs_naive",
    "async_cpu_vs_naive",
    "async_vs_sync",
    "cluster_3_primaries_rate",
    "cluster_3_primaries_capacity",
}


def test_bench_is_a_cli_command() -> None:
    args = build_parser().parse_args(["bench", "--quick", "--output", "x.json"])
    assert args.quick is True
    assert args.output == Path("x.json")
    assert callable(args.run)


def test_bench_without_a_checkout_explains_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert load_runner(tmp_path, "rac_no_such_package.runner") is None
    assert unavailable(argparse.Namespace()) == 2
    assert "pip install -e ." in capsys.readouterr().err


def test_scaled_sizes_keep_at_least_one() -> None:
    tiny = QUICK.scaled(0.0001)
    assert all(value >= 1 for value in vars(tiny).values())
    assert Sizes().scaled(0.5).latency_blocks == Sizes().latency_blocks // 2


def test_the_baseline_loses_acks_when_two_processes_write_one_run(
    redis_server: RedisServer,
) -> None:
    """Why the baseline exists: each writer rewrites the whole list from its own copy."""
    client = redis_server.client()
    first, second = LegacyAuditStore(client, "t1"), LegacyAuditStore(client, "t1")
    run = uuid.uuid4()
    a, b = (create_domain_ack(run, "logs", name) for name in ("a", "b"))
    first.add_ack(run, a)
    second.add_ack(run, b)
    assert [ack["action"] for ack in first.get_acks(run)] == ["b"]
    first.clear_run(run)
    client.close()


@pytest.mark.slow
def test_quick_run_prints_and_writes_every_figure(tmp_path: Path) -> None:
    """``rac-store bench --quick`` (scaled down) from a fresh process: table and JSON."""
    output = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rac_store",
            "bench",
            "--quick",
            "--scale",
            "0.05",
            "--output",
            str(output),
            "--markdown",
            str(tmp_path / "bench.md"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "where add_ack's time goes" in done.stdout
    document = json.loads(output.read_text())
    figures = {fig["key"]: fig for fig in document["figures"]}
    assert set(figures) == FIGURES
    for key, fig in figures.items():
        if key == "lost_acks":
            assert fig["ours"] == 0 and fig["detail"]["ours_unique"] == fig["detail"]["sent"]
            continue
        assert math.isfinite(fig["ratio"]) and fig["ratio"] > 0, key
        assert fig["title"].strip() in done.stdout, key
    assert document["machine"]["nproc"] >= 1
    assert document["profile"]["server"]["evalsha_usec_per_ack"] > 0
    table = (tmp_path / "bench.md").read_text()
    assert table.count("\n") == 2 + len(FIGURES)  # header, rule, one row per figure


@pytest.mark.slow
def test_the_gang_reports_failed_and_dead_workers() -> None:
    """A worker's error reaches the runner; a dead worker does not hang it."""
    gang = Gang(2)
    try:
        bad = [Task("set", "redis://127.0.0.1:1/0", "x", (), 1, w) for w in range(2)]
        with pytest.raises(RuntimeError, match="worker failed"):
            gang.run(bad)
        time.sleep(0.5)  # let its queue threads finish: a kill inside them would hold their locks
        gang._procs[0].kill()
        gang._procs[0].join(10)
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="stopped"):
            gang.run(bad)
        assert time.monotonic() - started < 30
    finally:
        gang.close(timeout=5)
