"""pytest-benchmark: one benchmark per store operation, on Redis and on the embedded server.

``pytest benchmarks/`` runs them; the side-by-side ratios come from the runner
(``python -m benchmarks``). Every write benchmark writes something new on each
round, as a worker does.
"""

from __future__ import annotations

import uuid

from pytest_benchmark.fixture import BenchmarkFixture

from rac_store import AuditStatus, AuditStore, create_run_expectations

from .conftest import ROUNDS, ack_feeder, feeder
from .workload import ack_for, chunks, declare, pending_acks


def test_ping(benchmark: BenchmarkFixture, redis_store: AuditStore) -> None:
    """The reference: one round trip on the connection add_ack uses."""
    assert benchmark.pedantic(redis_store.client.ping, rounds=ROUNDS, warmup_rounds=50)


def test_add_ack(benchmark: BenchmarkFixture, store: AuditStore) -> None:
    """The hot path: one ack answering a PENDING expectation."""
    outcome = benchmark.pedantic(
        store.add_ack, setup=ack_feeder(store, ROUNDS + 50), rounds=ROUNDS, warmup_rounds=50
    )
    assert outcome.value == "RECORDED"


def test_add_acks_batch_of_100(benchmark: BenchmarkFixture, store: AuditStore) -> None:
    """One call with 100 acks of one run."""
    rounds = 50
    batches = [
        (chunk[0].run_id, [item.ack for item in chunk])
        for chunk in chunks(pending_acks(store, 100 * (rounds + 5), per_run=100), 100)
    ]
    outcomes = benchmark.pedantic(
        store.add_acks, setup=feeder(batches), rounds=rounds, warmup_rounds=5
    )
    assert len(outcomes) == 100


def test_add_expectations(benchmark: BenchmarkFixture, store: AuditStore) -> None:
    """A new run declares the four standard expectations."""
    runs = [uuid.uuid4() for _ in range(ROUNDS + 50)]
    items = [(run, create_run_expectations(run)) for run in runs]
    added = benchmark.pedantic(
        store.add_expectations, setup=feeder(items), rounds=ROUNDS, warmup_rounds=50
    )
    assert added == 4


def test_update_expectation_status(benchmark: BenchmarkFixture, store: AuditStore) -> None:
    """A manual move PENDING -> MISSING."""
    items = []
    for _ in range(ROUNDS // 10 + 10):
        run = uuid.uuid4()
        declare(store, run, 0, 10)
        items += [
            (run, ack_for(run, i).domain, ack_for(run, i).action, AuditStatus.MISSING)
            for i in range(10)
        ]
    assert benchmark.pedantic(
        store.update_expectation_status, setup=feeder(items), rounds=ROUNDS, warmup_rounds=50
    )


def test_get_expectations(benchmark: BenchmarkFixture, store: AuditStore) -> None:
    """Read a run of 4 expectations back."""
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    got = benchmark.pedantic(store.get_expectations, args=(run,), rounds=ROUNDS)
    assert len(got) == 4


def test_get_acks(benchmark: BenchmarkFixture, store: AuditStore) -> None:
    """Read a run of 100 acks back."""
    run = uuid.uuid4()
    store.add_acks(run, [ack_for(run, i) for i in range(100)])
    got = benchmark.pedantic(store.get_acks, args=(run,), rounds=ROUNDS // 4)
    assert len(got) == 100


def test_get_pending_run_ids(benchmark: BenchmarkFixture, redis_store: AuditStore) -> None:
    """The 100 earliest of 1,000 pending runs, from every shard."""
    for _ in range(1000):
        run = uuid.uuid4()
        declare(redis_store, run, 0, 1)
    got = benchmark.pedantic(
        redis_store.get_pending_run_ids, kwargs={"limit": 100}, rounds=ROUNDS // 4
    )
    assert len(got) == 100


def test_load_from_redis(benchmark: BenchmarkFixture, store: AuditStore) -> None:
    """Does the store hold a run? (one EXISTS over its keys)"""
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    assert benchmark.pedantic(store.load_from_redis, args=(run,), rounds=ROUNDS)


def test_clear_run(benchmark: BenchmarkFixture, store: AuditStore) -> None:
    """Delete a run of 4 expectations and 4 acks."""
    runs = [uuid.uuid4() for _ in range(ROUNDS // 4 + 10)]
    for run in runs:
        store.add_expectations(run, create_run_expectations(run))
        store.add_acks(run, [ack_for(run, i) for i in range(4)])
    assert benchmark.pedantic(store.clear_run, setup=feeder(runs), rounds=ROUNDS // 4)
