"""Issue 6, item 2: crash safety with ``appendonly yes`` and ``appendfsync always``.

Four worker processes ack; the server is killed with SIGKILL twice in the
middle of the load and restarted on the same port and directory (it reloads
its AOF). Every ack whose call returned success must be there, none twice, and
every status must still follow from the stored acks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from rac_store import AuditStore

from ..support.redis_server import RedisServer
from ..support.workload import WorkerSpec, audit, run_workers, start_runs, worker_specs

WORKERS = 4
ACKS_PER_WORKER = int(os.environ.get("RAC_CRASH_ACKS", "2000"))
KILLS = 2
DOWN_SECONDS = 0.3


@pytest.mark.slow
def test_kill_9_mid_load_loses_no_confirmed_ack(tmp_path: Path) -> None:
    server = RedisServer(["--appendonly", "yes", "--appendfsync", "always"]).start()
    try:
        store = AuditStore(server.client())
        runs = start_runs(store, 8)
        # ~9 s of re-sends (longer than a restart); half of the workers send batches
        patient = WorkerSpec(
            server.url, runs, ACKS_PER_WORKER, socket_timeout=2.0, retry=(40, 0.05, 0.25)
        )
        specs = worker_specs(patient, tmp_path, WORKERS, lambda i: {"batch": 1 + 4 * (i % 2)})
        total = WORKERS * ACKS_PER_WORKER
        kills: list[tuple[int, float]] = []

        def crash_twice(progress: Any) -> None:
            for k in range(1, KILLS + 1):
                while progress.value < total * k // (KILLS + 1):
                    time.sleep(0.01)
                kills.append((progress.value, time.monotonic()))
                server.kill()
                time.sleep(DOWN_SECONDS)
                server.restart()

        started = time.monotonic()
        report = run_workers(specs, during=crash_twice)
        elapsed = time.monotonic() - started
        store = AuditStore(server.client())
        result = audit(store, report, runs)
        print(
            f"\n[crash] kills={len(kills)} at acks={[k for k, _ in kills]} confirmed="
            f"{report.confirmed_count}/{total} stored={result.stored} lost={result.lost}"
            f" duplicated={result.duplicated} in-flight-stored={result.unconfirmed_but_stored}"
            f" caller errors={len(report.errors)} elapsed={elapsed:.1f}s"
        )
        assert len(kills) == KILLS
        assert report.errors == []  # the re-sends rode out both restarts
        assert report.confirmed_count == total
        assert result.lost == 0
        assert result.duplicated == 0
        assert result.stored == total
        assert result.status_mismatches == []
    finally:
        server.cleanup()
