"""Findings consumers: consumer groups over every shard's stream, reclaim, losses never silent.

Run on the embedded store, the session's redis-server (also with the consumer
logged in as the least-privilege alerting user) and the local Redis Cluster.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from rac_store import (
    AsyncAuditReconciler,
    AsyncAuditStore,
    AuditReconciler,
    AuditStore,
    Finding,
    FindingType,
    InvalidInputError,
    StorePermissionError,
)
from rac_store.acl import alerting_rules
from rac_store.consumer import FindingsConsumer
from rac_store.embedded import create_embedded_client, create_embedded_server
from rac_store.findings_groups import lost_count

from .support.findings_events import add_event
from .support.redis_server import RedisServer
from .support.targets import ServerTarget

SHARDS = 4
ALERTING_PASSWORD = "rac-alerting-password"


@dataclass
class Env:
    """A producer store (admin) and a way to make consumers (maybe as the alerting user)."""

    store: AuditStore
    raw: Any
    consumer_store: Callable[[], AuditStore]

    def consumer(self, group: str, name: str) -> FindingsConsumer:
        return AuditReconciler(self.consumer_store(), metrics=False).consumer(group, name)

    def produce(self, n: int) -> list[tuple[int, str]]:
        """``n`` findings events (INCOMPLETE verdicts of new runs); (shard, stream id) of each."""
        core = self.store.core
        made = [add_event(self.raw, core.keys, core.findings_maxlen, n=str(i)) for i in range(n)]
        return [(shard, entry) for shard, entry, _ in made]

    def added(self) -> dict[int, int]:
        """Events ever added to each shard's stream (``entries-added``)."""
        return {
            s: int(self.raw.xinfo_stream(key)["entries-added"]) if self.raw.exists(key) else 0
            for s, key in enumerate(self.store.core.keys.all_findings())
        }


EnvFactory = Callable[..., Env]


@pytest.fixture(
    params=(
        "embedded",
        "redis",
        "redis-alerting",
        pytest.param("cluster", marks=pytest.mark.cluster),
    )
)
def open_env(request: pytest.FixtureRequest) -> Iterator[EnvFactory]:
    kind = request.param
    if kind == "embedded":
        server = create_embedded_server()

        def client() -> Any:
            return create_embedded_client(server)

        raw = client()
    elif kind == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        raw = request.getfixturevalue("cluster_client")
        client = cluster.client
    else:
        single: RedisServer = request.getfixturevalue("redis_server")
        raw = request.getfixturevalue("redis_client")
        client = single.client
        if kind == "redis-alerting":
            raw.execute_command(
                "ACL", "SETUSER", "rac-alerting", "reset", "on", f">{ALERTING_PASSWORD}",
                *alerting_rules("rac"),
            )  # fmt: skip

            def client() -> Any:
                return single.client(username="rac-alerting", password=ALERTING_PASSWORD)

    stores: list[AuditStore] = []

    def make(**options: Any) -> Env:
        options = {"shards": SHARDS, "metrics": False, **options}
        producer = AuditStore(raw, **options)

        def consumer_store() -> AuditStore:
            made = AuditStore(client(), **options)
            stores.append(made)
            return made

        return Env(producer, raw, consumer_store)

    yield make
    for made in stores:
        made.close()


def drain(consumer: FindingsConsumer, count: int = 50) -> list[Finding]:
    """Read until nothing new comes (no waiting)."""
    found: list[Finding] = []
    while batch := consumer.read(count):
        found += batch
    return found


def events(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.type is not FindingType.GAP]


def where(findings: list[Finding]) -> list[tuple[int, str]]:
    """(shard, stream id) of each event, sorted (stream ids repeat across shards)."""
    return sorted((f.shard or 0, str(f.stream_id)) for f in events(findings))


def test_each_event_goes_to_one_consumer_of_a_group(open_env: EnvFactory) -> None:
    env = open_env()
    produced = env.produce(40)
    first, second = env.consumer("alerts", "a"), env.consumer("alerts", "b")
    got: dict[str, list[Finding]] = {"a": [], "b": []}
    while True:
        batch_a, batch_b = first.read(7), second.read(7)
        if not batch_a and not batch_b:
            break
        got["a"] += batch_a
        got["b"] += batch_b
    assert got["a"] and got["b"]
    assert not set(where(got["a"])) & set(where(got["b"]))
    assert sorted(where(got["a"]) + where(got["b"])) == sorted(produced)
    assert all(f.type is FindingType.INCOMPLETE for f in first.claim(0, 100))
    # Another group gets every event too, independently.
    assert where(drain(env.consumer("audit-log", "x"))) == sorted(produced)
    assert first.backlog().total_lag == 0


def test_unacked_events_stay_pending_and_are_reclaimable(open_env: EnvFactory) -> None:
    env = open_env()
    env.produce(12)
    crashed, survivor = env.consumer("g", "crashed"), env.consumer("g", "survivor")
    taken = drain(crashed)
    assert len(taken) == 12 and crashed.backlog().total_pending == 12
    assert survivor.read(50) == []  # delivered to `crashed`: nobody else gets them by read
    assert survivor.claim(min_idle_ms=3_600_000) == []  # not idle long enough
    time.sleep(0.01)
    reclaimed = survivor.claim(min_idle_ms=5)
    assert where(reclaimed) == where(taken)
    assert sorted(f.details["n"] for f in reclaimed) == sorted(f.details["n"] for f in taken)
    assert survivor.ack(reclaimed) == 12
    assert survivor.ack(reclaimed) == 0  # acking twice changes nothing
    assert survivor.claim(min_idle_ms=0) == []
    assert survivor.backlog().total_pending == 0


def test_a_consumer_behind_the_bound_learns_how_many_events_it_lost(
    open_env: EnvFactory,
) -> None:
    env = open_env(findings_maxlen=10)
    slow = env.consumer("g", "slow")
    env.produce(8)
    early = slow.read(3)
    env.produce(400)  # every stream is trimmed far past the group's position
    late = drain(slow)
    found = early + late
    gaps = [f for f in found if f.type is FindingType.GAP]
    assert gaps and all(f.details["reason"] == "trimmed before the group read them" for f in gaps)
    assert all(f.source == "consumer" and f.stream_id is None for f in gaps)
    per_shard: Counter[int] = Counter()
    for f in found:
        assert f.shard is not None
        per_shard[f.shard] += lost_count(f) or 0 if f.type is FindingType.GAP else 1
    # Every event ever added is either delivered or counted as lost: nothing silent.
    assert dict(per_shard) == {s: n for s, n in env.added().items() if n}
    # Each loss is reported once: more reads and a second consumer see no new gap.
    env.produce(3)
    again = drain(slow) + drain(env.consumer("g", "other"))
    assert len(again) == 3 and not [f for f in again if f.type is FindingType.GAP]
    # A group made after the trimming starts at the oldest event held: it lost nothing.
    fresh = drain(env.consumer("new-group", "x"))
    assert fresh and not [f for f in fresh if f.type is FindingType.GAP]


def test_pending_events_trimmed_before_their_ack_come_back_as_a_gap(
    open_env: EnvFactory,
) -> None:
    env = open_env(findings_maxlen=10)
    env.produce(20)
    dead = env.consumer("g", "dead")
    taken = events(drain(dead))
    env.produce(400)
    survivor = env.consumer("g", "survivor")
    survivor.ack(drain(survivor))
    claimed = survivor.claim(min_idle_ms=0, count=1000)
    gaps = [f for f in claimed if f.type is FindingType.GAP]
    lost = sum(lost_count(f) or 0 for f in gaps)
    assert lost > 0
    assert {f.details["reason"] for f in gaps} == {
        "delivered, then trimmed before a consumer acked them"
    }
    assert lost + len(events(claimed)) == len(taken)
    assert survivor.claim(min_idle_ms=0, count=1000) == []  # reported once


def test_dead_letter_moves_an_event_once(open_env: EnvFactory) -> None:
    env = open_env()
    env.produce(2)
    consumer = env.consumer("g", "c")
    poison, fine = drain(consumer)
    dead_id = consumer.dead_letter(poison, "HTTP 500: boom", 5)
    assert dead_id is not None
    assert consumer.dead_letter(poison, "HTTP 500: boom", 5) is None  # not pending any more
    key = env.store.core.keys.dead_letters(poison.shard or 0)
    ((entry_id, fields),) = env.raw.xrange(key)
    values = {k.decode(): v.decode() for k, v in fields.items()}
    assert entry_id.decode() == dead_id
    assert values["run_id"] == poison.run_id and values["type"] == "INCOMPLETE"
    assert values["n"] == poison.details["n"]
    assert (values["dead_group"], values["dead_stream_id"]) == ("g", poison.stream_id)
    assert (values["dead_reason"], values["dead_tries"]) == ("HTTP 500: boom", "5")
    assert consumer.backlog().total_pending == 1  # `fine` is still pending
    time.sleep(0.01)
    assert [f.stream_id for f in consumer.claim(1)] == [fine.stream_id]


def test_an_existing_group_is_used_as_it_is(open_env: EnvFactory) -> None:
    env = open_env()
    env.produce(5)
    keys = env.store.core.keys.all_findings()
    for key in keys:
        env.raw.xgroup_create(key, "made-by-hand", id="$", mkstream=True)
    env.produce(3)
    assert len(drain(env.consumer("made-by-hand", "c"))) == 3


def _produce_later(url: str, delay: float) -> None:
    time.sleep(delay)
    store = AuditStore.from_url(url, shards=SHARDS, metrics=False)
    add_event(store.client, store.core.keys, store.core.findings_maxlen, "STALE")
    store.close()


def test_read_waits_for_an_event_from_another_process(server: ServerTarget) -> None:
    """One blocking XREAD on a single server; polling every shard on a cluster."""
    store = AuditStore(server.client, shards=SHARDS, metrics=False)
    consumer = AuditReconciler(store, metrics=False).consumer("g", "c")
    assert consumer.read(10) == []
    producer = multiprocessing.get_context("spawn").Process(
        target=_produce_later, args=(server.url, 0.5)
    )
    producer.start()
    try:
        got = consumer.read(10, block_ms=30_000)
    finally:
        producer.join(30)
    assert [f.type for f in got] == [FindingType.STALE]
    assert consumer.read(10, block_ms=50) == []


def test_bad_names_and_arguments() -> None:
    rec = AuditReconciler(AuditStore(create_embedded_client(), metrics=False), metrics=False)
    for group, name in (("", "c"), ("g", ""), ("a b", "c"), ("g", "x\n"), ("g" * 200, "c")):
        with pytest.raises(InvalidInputError):
            rec.consumer(group, name)
    consumer = rec.consumer("g", "c")
    with pytest.raises(InvalidInputError):
        consumer.read(0)
    with pytest.raises(InvalidInputError):
        consumer.read(1, block_ms=-5)
    with pytest.raises(InvalidInputError):
        consumer.claim(-1)


@pytest.mark.redis_only
def test_the_alerting_user_cannot_touch_run_data(
    redis_client: Any, redis_server: RedisServer
) -> None:
    redis_client.execute_command(
        "ACL", "SETUSER", "rac-alerting", "reset", "on", f">{ALERTING_PASSWORD}",
        *alerting_rules("rac"),
    )  # fmt: skip
    AuditStore(redis_client, metrics=False)  # records the layout
    alerting = AuditStore(
        redis_server.client(username="rac-alerting", password=ALERTING_PASSWORD), metrics=False
    )
    run = uuid.uuid4()
    with pytest.raises(StorePermissionError):
        alerting.get_acks(run)
    with pytest.raises(StorePermissionError):
        alerting.clear_run(run)
    assert AuditReconciler(alerting, metrics=False).consumer("g", "c").read(10) == []
    alerting.close()


# -- asyncio ---------------------------------------------------------------------------
@pytest.fixture(params=("async-embedded", "async-redis"))
def async_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "async-embedded":
        return None
    request.getfixturevalue("redis_client")
    return str(request.getfixturevalue("redis_server").url)


def test_async_consumer(async_url: str | None) -> None:
    server = create_embedded_server()

    def open_store(**options: Any) -> AsyncAuditStore:
        options = {"shards": SHARDS, "metrics": False, **options}
        if async_url is None:
            from rac_store.embedded import create_embedded_async_client

            return AsyncAuditStore(create_embedded_async_client(server), **options)
        return AsyncAuditStore.from_url(async_url, **options)

    # a sync client of the same server writes the events
    raw = create_embedded_client(server) if async_url is None else redis.Redis.from_url(async_url)

    async def main() -> tuple[list[Finding], list[Finding], list[Finding], int]:
        async with open_store(findings_maxlen=10) as store:
            rec = AsyncAuditReconciler(store, metrics=False)
            one, two = rec.consumer("g", "one"), rec.consumer("g", "two")
            for _ in range(3):
                add_event(raw, store.core.keys, 10, "STALE")
            first = await one.read(2)
            for _ in range(300):
                add_event(raw, store.core.keys, 10, "STALE")
            rest: list[Finding] = []
            while batch := await two.read(100):
                rest += batch
            acked = await two.ack(rest)
            await asyncio.sleep(0.01)
            reclaimed = await two.claim(1, 1000)  # `one` never acked its two events
            return first, rest, reclaimed, acked

    first, rest, reclaimed, acked = asyncio.run(main())
    assert len(events(first)) == 2
    assert [f for f in rest if f.type is FindingType.GAP]
    assert acked == len(events(rest))
    lost = sum(lost_count(f) or 0 for f in reclaimed)
    assert lost + len(events(reclaimed)) == 2


@pytest.mark.slow
@pytest.mark.redis_only
def test_loss_figures_of_a_consumer_far_behind(redis_client: Any) -> None:
    """30,000 events into one shard bounded at 10,000 while the group is behind: every event is
    delivered or counted lost, in one GAP record (``pytest tests/test_consumer.py -s -k figures``).
    """
    store = AuditStore(redis_client, shards=1, findings_maxlen=10_000, metrics=False)
    env = Env(store, redis_client, lambda: store)
    consumer = env.consumer("pager", "slow")
    env.produce(5)
    first = consumer.read(5)
    consumer.ack(first)
    for _ in range(30_000):
        add_event(redis_client, store.core.keys, 10_000, missing="1")
    found = drain(consumer, 1000)
    gaps = [f for f in found if f.type is FindingType.GAP]
    lost = sum(lost_count(f) or 0 for f in gaps)
    delivered = len(first) + len(events(found))
    added = env.added()[0]
    assert len(gaps) == 1 and lost > 0
    assert delivered + lost == added == 30_005
    print(
        f"\nproduced {added}; delivered {delivered}; reported lost {lost} in {len(gaps)} GAP record"
    )
