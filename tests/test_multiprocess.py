"""Real processes acking into shared runs at once: nothing lost, nothing doubled."""

from __future__ import annotations

import multiprocessing
import uuid
from collections import Counter

import pytest

from rac_store import AuditStatus, AuditStore, create_domain_ack, create_run_expectations

from .support.targets import ServerTarget

PROCESSES = 8
ACKS_PER_PROCESS = 1_000
RUNS = 4


def _worker(url: str, runs: list[str], worker: int, count: int) -> None:
    store = AuditStore.from_url(url)
    for i in range(count):
        run = runs[i % len(runs)]
        if i < len(runs):
            action = "create_incident"  # each worker acks every run's expectation once
            store.add_ack(run, create_domain_ack(uuid.UUID(run), "incidents", action))
        else:
            ack = create_domain_ack(uuid.UUID(run), "work", f"w{worker}-{i}")
            store.add_ack(run, ack)
            if i % 97 == 0:
                store.add_ack(run, ack)  # a re-sent duplicate must not count
    store.close()


@pytest.mark.slow
def test_eight_processes_exact_counts(server: ServerTarget) -> None:
    store = AuditStore(server.client)
    runs = [str(uuid.uuid4()) for _ in range(RUNS)]
    for run in runs:
        store.add_expectations(run, create_run_expectations(uuid.UUID(run)))
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(server.url, runs, w, ACKS_PER_PROCESS))
        for w in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    total = 0
    for run in runs:
        acks = store.get_acks(run)
        ids = Counter(a.id for a in acks)
        assert max(ids.values()) == 1
        total += len(acks)
        statuses = {e.key(): e.status for e in store.get_expectations(run)}
        assert statuses[("incidents", "create_incident")] is AuditStatus.ACKED
        assert statuses[("logs", "start_trace")] is AuditStatus.PENDING
    assert total == PROCESSES * ACKS_PER_PROCESS
    assert sorted(store.get_pending_run_ids()) == sorted(runs)
