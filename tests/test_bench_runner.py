"""The benchmark runner works (not its figures: speed is never asserted in tests)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from benchmarks import instructions, peers, sweep_cost, targets
from benchmarks.baseline import LegacyAuditStore
from benchmarks.context import QUICK, Bench, Sizes
from benchmarks.gang import Gang, Task
from benchmarks.memory_per_run import _table_slots
from benchmarks.report import Figure, Goal
from rac_store import create_domain_ack

from .support.redis_server import RedisServer
from .support.snapshot import snapshot

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: ``python -m benchmarks`` runs from there."""

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
    "served",
    "sweep_1_overdue",
    "sweep_4_overdue",
    "sweep_embedded",
    "web_overview",
    "web_run",
    "web_run_deep",
    "web_findings",
    "web_findings_filtered",
    "throughput_8p",
    "slowlog_10ms",
    "throughput_8p_cpu",
    "lost_acks",
    "async_vs_naive",
    "async_cpu_vs_naive",
    "async_vs_sync",
    "cluster_3_primaries_rate",
    "cluster_3_primaries_capacity",
    "peer_ping",
    "peer_set",
    "peer_rq_finish",
    "peer_rq_worker",
    "peer_celery",
    "peer_original",
    "server_single",
    "server_batch",
    "memory_per_run",
    "keys_per_run",
    "direct_send_p50",
    "direct_send_cpu",
    "direct_send_batch_p50",
    "client_cpu_vs_ping",
}


def _benchmarks(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks ARGS`` in a fresh process, from the repository root.

    Without RAC_ALLOW_NO_PERSISTENCE (the suite's own setting): the runner sets it.
    """
    environment = {k: v for k, v in os.environ.items() if k != "RAC_ALLOW_NO_PERSISTENCE"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_runner_answers_help_from_the_repository_root() -> None:
    done = _benchmarks("--help", timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "python -m benchmarks" in done.stdout
    for option in ("--quick", "--redis-url", "--output", "--scale", "--markdown"):
        assert option in done.stdout


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


@contextlib.contextmanager
def given_server(
    redis_server: RedisServer, prefix: str, scale: float
) -> Iterator[tuple[redis.Redis, Bench]]:
    """A run on a server the runner did not start (``--redis-url``) that holds a key of
    somebody else's: the key must still be there afterwards."""
    client = redis_server.client()
    kept = f"not-the-bench:{uuid.uuid4()}"
    client.set(kept, "x")
    try:
        yield client, Bench(redis_server.url, QUICK.scaled(scale), own_server=False, prefix=prefix)
        assert client.get(kept) == b"x"
    finally:
        client.delete(kept)
        client.close()


def test_the_sweep_on_a_given_server_keeps_its_data(redis_server: RedisServer) -> None:
    """With ``--redis-url`` the sweep touches only the run's own keys and counts no commands."""
    with given_server(redis_server, "rbtest", 0.01) as (client, bench):
        found = sweep_cost.figures(bench)
        bench.cleanup()
        assert {fig.key for fig in found} == {k for k in FIGURES if k.startswith("sweep_")}
        assert all("commands_per_run" not in fig.detail for fig in found)
        assert not list(client.scan_iter(match="rbtest*"))


def test_the_peers_on_a_given_server_leave_nothing_behind(redis_server: RedisServer) -> None:
    """rq's and Celery's keys, and rq's list of queues, are cleaned up like the store's."""
    with given_server(redis_server, "pqtest", 0.05) as (client, bench):
        found = peers.figures(bench)
        assert {fig.key for fig in found} == {k for k in FIGURES if k.startswith("peer_")}
        assert client.keys("rq:*pqtest*") and client.keys("celery-task-meta-pqtest*")
        bench.cleanup()
        assert not client.keys("*pqtest*")
        assert not [q for q in client.smembers("rq:queues") if b"pqtest" in q]


def _figure(key: str, ours: float, reference: float) -> Figure:
    return Figure(key, key, ours, reference, "us", None)


def test_targets_are_read_from_the_figures_of_the_run() -> None:
    found = targets.build(
        [
            _figure("latency_p50", 52.0, 45.0),
            _figure("server_single", 7.5, 2.0),
            _figure("peer_rq_finish", 80.0, 100.0),
        ]
    )
    by_source = {t.source: t for t in found}
    gap = by_source["latency_p50"]
    assert (gap.value, gap.goal, gap.verdict) == (7.0, Goal("<=", 10), "met")
    single = by_source["server_single"]
    assert (single.value, single.verdict) == (7.5, "MISSED")  # absolute: 7.5 µs > 6 µs
    assert by_source["peer_rq_finish"].value == pytest.approx(0.8)
    assert by_source["peer_celery"].verdict == "not measured"  # no figure in this run
    assert by_source["sweep_1_overdue"].goal is None
    assert "not measured" in targets.markdown(found)


@pytest.mark.parametrize("kind", ["ack", "build", "ping"])
def test_the_instruction_counts_loop_runs_as_callgrind_runs_it(
    redis_server: RedisServer, kind: str
) -> None:
    """``benchmarks/instructions.py`` runs its loop as a script, rac_store from PYTHONPATH."""
    client = redis_server.client()
    before = client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    script = str(ROOT / "benchmarks" / "instructions.py")
    done = subprocess.run(
        [sys.executable, script, "--loop", redis_server.url, kind, "7"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    after = client.info("commandstats")["cmdstat_evalsha"]["calls"]
    prepared = instructions.PREPARED // 50 + 1  # declarations, then one warm-up ack
    assert after - before >= prepared + (7 if kind == "ack" else 0)
    client.close()


def test_hash_tables_are_sized_as_redis_sizes_them() -> None:
    assert [_table_slots(n) for n in (1, 4, 5, 4096, 4097, 10**6)] == [
        4,
        4,
        8,
        4096,
        8192,
        2**20,
    ]


@pytest.mark.slow
def test_quick_run_prints_and_writes_every_figure(tmp_path: Path) -> None:
    """``python -m benchmarks --quick`` (scaled down) from a fresh process: table and JSON."""
    output = tmp_path / "bench.json"
    done = _benchmarks(
        "--quick",
        "--scale",
        "0.05",
        "--output",
        str(output),
        "--markdown",
        str(tmp_path / "bench.md"),
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PersistenceWarning" not in done.stderr  # its servers have no AOF on purpose
    assert "where add_ack's time goes" in done.stdout
    document = json.loads(output.read_text())
    figures = {fig["key"]: fig for fig in document["figures"]}
    assert set(figures) == FIGURES
    for key, fig in figures.items():
        if key == "lost_acks":
            assert fig["ours"] == 0 and fig["detail"]["ours_unique"] == fig["detail"]["sent"]
            continue
        if key == "slowlog_10ms":  # a count, reported: speed is never asserted in tests
            assert fig["must_be"] == 0 and fig["ours"] >= 0 and fig["baseline"] >= 0
            continue
        assert math.isfinite(fig["ratio"]) and fig["ratio"] > 0, key
        assert fig["title"].strip() in done.stdout, key
    assert document["machine"]["nproc"] >= 1
    assert document["profile"]["server"]["evalsha_usec_per_ack"] > 0
    sweep = figures["sweep_1_overdue"]["detail"]  # its own server: command counts are read
    assert sweep["runs"] >= 1 and sweep["evalsha_per_run"] >= 1
    assert document["profile"]["client_parts_p50_us"]["hiredis_pack"] > 0
    targets = document["targets"]
    assert len(targets) == 12 and all(t["value"] is not None for t in targets)
    assert {t["source"] for t in targets} <= set(FIGURES)
    peers = figures["peer_ping"]["detail"]["contenders"]
    assert set(peers) == {"add_ack", "ping", "set", "rq_finish", "rq_worker", "celery", "original"}
    memory = figures["memory_per_run"]["detail"]
    assert memory["ours"]["keys_per_run"] == 4 and memory["original"]["keys_per_run"] == 2
    figures_md, targets_md, peers_md = (tmp_path / "bench.md").read_text().strip().split("\n\n")
    assert figures_md.count("\n") == 1 + len(FIGURES)  # header, rule, one row per figure
    assert targets_md.count("\n") == 1 + len(targets)
    assert peers_md.count("\n") == 1 + len(peers)


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
        # the dead worker is noticed by its exit code, not by the run's deadline running out
        with pytest.raises(RuntimeError, match=r"benchmark workers stopped \(exit codes \[-9\]\)"):
            gang.run(bad)
    finally:
        gang.close(timeout=5)


@pytest.mark.parametrize("scale", ["-1", "0", "inf", "nan", "lots"])
def test_a_bad_scale_is_a_usage_error(scale: str) -> None:
    done = _benchmarks("--scale", scale, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--scale" in done.stderr


@pytest.mark.slow
def test_a_run_on_a_given_server_leaves_nothing_behind(tmp_path: Path) -> None:
    """``--redis-url``: only the run's own keys are written, and every one is deleted."""
    server = RedisServer().start()
    try:
        client = server.client()
        client.set("production:key", "kept")
        before = snapshot(client)
        done = _benchmarks(
            "--quick",
            "--scale",
            "0.02",
            "--no-profile",
            "--redis-url",
            server.url,
            "--output",
            str(tmp_path / "bench.json"),
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert snapshot(client) == before
        figures = {
            fig["key"] for fig in json.loads((tmp_path / "bench.json").read_text())["figures"]
        }
        assert "served" in figures
        client.close()
    finally:
        server.cleanup()
