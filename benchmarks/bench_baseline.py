"""pytest-benchmark: the old design's add_ack, fresh and with 10,000 acks in the run (O(n))."""

from __future__ import annotations

import uuid

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from rac_store import DomainAck
from tests.support.redis_server import RedisServer

from .baseline import LegacyAuditStore
from .conftest import feeder
from .workload import ack_for


@pytest.mark.parametrize("already", [0, 10_000])
def test_legacy_add_ack(
    benchmark: BenchmarkFixture, redis_server: RedisServer, already: int
) -> None:
    """One ack into a run that holds ``already`` acks: the whole JSON list is rewritten."""
    legacy = LegacyAuditStore(redis_server.client(), prefix="legacy")
    run = uuid.uuid4()
    legacy.preload(run, [ack_for(run, i) for i in range(already)])
    rounds = 20 if already else 500
    items = [(run, ack_for(run, already + i)) for i in range(rounds + 5)]
    sent = []

    def add_ack(run_id: uuid.UUID, ack: DomainAck) -> None:
        sent.append(ack)
        legacy.add_ack(run_id, ack)

    benchmark.pedantic(add_ack, setup=feeder(items), rounds=rounds, warmup_rounds=5)
    assert len(legacy.get_acks(run)) == already + len(sent)  # also with --benchmark-disable
