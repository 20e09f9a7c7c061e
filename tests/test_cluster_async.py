"""The asyncio store on the local cluster: cluster URLs, and coalesced acks one EVALSHA per shard.

The async contract suite runs on the cluster too (backend ``async-cluster``).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio.cluster

from rac_store import (
    AckOutcome,
    AsyncAuditStore,
    AuditExpectation,
    StoreDurabilityMode,
    create_domain_ack,
)

from .support.cluster import LocalCluster, NodeStats

pytestmark = pytest.mark.cluster


def test_concurrent_acks_coalesce_into_one_evalsha_per_shard(cluster: LocalCluster) -> None:
    runs = [uuid.uuid4() for _ in range(64)]
    acks = [create_domain_ack(run, "d", f"a{i}") for i in range(16) for run in runs]

    async def scenario() -> tuple[list[AckOutcome], int, int]:
        async with AsyncAuditStore.from_url(cluster.url) as store:
            assert isinstance(store.client, redis.asyncio.cluster.RedisCluster)
            for run in runs:
                await store.add_expectations(
                    run, [AuditExpectation(run, "d", f"a{i}", 60_000) for i in range(16)]
                )
            await store.add_ack(runs[0], create_domain_ack(runs[0], "x", "warm-up"))
            stats = NodeStats(cluster)
            stats.reset()
            outcomes = await asyncio.gather(*(store.add_ack(a.run_id, a) for a in acks))
            commands = stats.read("commandstats")
            stats.close()
            calls = sum(c.get("cmdstat_evalsha", {}).get("calls", 0) for c in commands.values())
            stored = sum([len(await store.get_acks(run)) for run in runs])
            return outcomes, calls, stored

    outcomes, script_runs, stored = asyncio.run(scenario())
    assert outcomes == [AckOutcome.RECORDED] * len(acks)
    assert stored == len(acks) + 1
    # 1,024 acks over 16 shards: a handful of trips, each one EVALSHA per shard it touches.
    print(f"\n{len(acks)} concurrent acks: {script_runs} EVALSHA calls")
    assert script_runs <= len(acks) // 8


def test_async_store_from_the_environment(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAC_REDIS_URL", cluster.url)
    monkeypatch.setenv("AOS_MODE", "prod")

    async def scenario() -> None:
        async with AsyncAuditStore() as store:
            assert isinstance(store.client, redis.asyncio.cluster.RedisCluster)
            assert store.durability_mode is StoreDurabilityMode.REDIS
            run = uuid.uuid4()
            await store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
            assert [a.action for a in await store.get_acks(run)] == ["start_trace"]

    asyncio.run(scenario())
