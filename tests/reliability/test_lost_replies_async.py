"""The auto-pipeline's round trip meets a real stalled server: lost replies, re-sends, once.

Concurrent ``add_ack`` callers share one round trip (one ``add_acks`` call for
the shard). A client with a tiny ``socket_timeout`` gives up on it while the
server is stalled; the store's RetryPolicy re-sends the same merged call (same
call token). With ``DEBUG SLEEP`` the first send still runs when the server
wakes, its reply lost: the script runs more than once, and the re-send must
report the first run's outcomes (not DUPLICATE) and store each ack once. With
``CLIENT PAUSE`` the first send never runs, and the re-send runs once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rac_store import (
    AckOutcome,
    AsyncAuditStore,
    AuditExpectation,
    DomainAck,
    RetryPolicy,
    create_domain_ack,
)

from ..support.faults import connections_received, script_executions, stalled
from ..support.redis_server import RedisServer

STALL_SECONDS = 0.3
TIMEOUT_SECONDS = 0.05
PATIENT = RetryPolicy(attempts=20, base_delay=0.02, max_delay=0.1)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """A private server: stalling it must not disturb other tests."""
    srv = RedisServer().start()
    yield srv
    srv.cleanup()


def the_acks(run: uuid.UUID) -> tuple[list[DomainAck], list[AckOutcome]]:
    """Four acks with four different first outcomes (a DUPLICATE would be a double count)."""
    acks = [
        create_domain_ack(run, "d", "on_time"),
        create_domain_ack(run, "d", "overdue"),
        create_domain_ack(run, "d", "undeclared"),
        create_domain_ack(run, "d", "fails", error="boom"),
    ]
    return acks, [AckOutcome.RECORDED, AckOutcome.LATE, AckOutcome.DRIFT, AckOutcome.RECORDED]


@pytest.mark.parametrize("how", ["sleep", "pause"])
def test_a_lost_round_trip_reply_is_resent_and_reports_the_first_outcomes(
    server: RedisServer, how: str
) -> None:
    admin = server.client()
    admin.flushall()
    run = uuid.uuid4()
    acks, first_outcomes = the_acks(run)
    counts: dict[str, int] = {}

    async def main() -> tuple[list[AckOutcome], list[DomainAck], int]:
        client = redis.asyncio.Redis(
            port=server.port, socket_timeout=TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0)
        )
        async with AsyncAuditStore(client, shards=1, retry=PATIENT) as store:
            await store.add_expectations(
                run,
                [
                    AuditExpectation(run, "d", "on_time", 600_000),
                    AuditExpectation(run, "d", "overdue", 0),
                    AuditExpectation(run, "d", "fails", 600_000),
                ],
            )
            await store.add_ack(run, DomainAck(run, "warm", "up"))  # add_acks is cached
            pipeline = store.autopipeline
            assert pipeline is not None
            trips = pipeline.round_trips
            counts["executions"] = script_executions(admin)
            counts["connections"] = connections_received(admin)
            with stalled(admin, how, STALL_SECONDS):
                outcomes = await asyncio.gather(*(store.add_ack(run, ack) for ack in acks))
            counts["executions"] = script_executions(admin) - counts["executions"]
            counts["connections"] = connections_received(admin) - counts["connections"]
            return list(outcomes), await store.get_acks(run), pipeline.round_trips - trips

    outcomes, stored, trips = asyncio.run(main())
    print(f"\n[async lost replies/{how}] {counts}")
    assert trips == 1  # the four callers shared one round trip
    assert counts["connections"] >= 1  # the round trip timed out: its connection was dropped
    if how == "sleep":
        assert counts["executions"] >= 2  # the first send ran after all, its reply lost
    else:
        assert counts["executions"] == 1  # the paused send never ran; the re-send ran once
    assert outcomes == first_outcomes
    assert [a.id for a in stored[1:]] == [a.id for a in acks]
