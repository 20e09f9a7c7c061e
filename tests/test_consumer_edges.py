"""Findings consumers at their edges: names that are not text, the backlog among other groups
(and of a group an admin destroyed), news that went to another consumer, claims of more
than one ``XAUTOCLAIM`` page, acks with nothing to ack, dead letters keeping every field,
the asyncio consumer's dead letters, backlog and cluster polling.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio.cluster

from rac_store import (
    AsyncAuditReconciler,
    AsyncAuditStore,
    AuditReconciler,
    AuditStore,
    FindingType,
    InvalidInputError,
)
from rac_store.consumer import FindingsConsumer
from rac_store.embedded import (
    create_embedded_async_client,
    create_embedded_client,
    create_embedded_server,
)
from rac_store.findings_groups import CLAIM_PAGE, TRIMMED_UNREAD, gap_record

from .support.cluster import LocalCluster
from .support.findings_events import add_event


@pytest.fixture(params=("embedded", "redis"))
def client(request: pytest.FixtureRequest) -> Any:
    """An admin client of a fresh embedded server, or of the emptied session redis-server."""
    if request.param == "embedded":
        return create_embedded_client(create_embedded_server())
    return request.getfixturevalue("redis_client")


def open_store(client: Any, shards: int = 1) -> AuditStore:
    return AuditStore(client, shards=shards, metrics=False)


def consumer(store: AuditStore, group: str, name: str) -> FindingsConsumer:
    return AuditReconciler(store, metrics=False).consumer(group, name)


def produce(store: AuditStore, n: int, **fields: str) -> list[str]:
    """``n`` events; the stream id of each."""
    keys, maxlen = store.core.keys, store.core.findings_maxlen
    return [add_event(store.client, keys, maxlen, **fields)[1] for _ in range(n)]


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_group_and_consumer_names_must_be_text() -> None:
    rec = AuditReconciler(AuditStore(create_embedded_client(), metrics=False), metrics=False)
    with pytest.raises(InvalidInputError, match=r"^group must be a string, got int$"):
        rec.consumer(7, "c")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"^consumer must be a string, got bytes$"):
        rec.consumer("g", b"c")  # type: ignore[arg-type]
    made = rec.consumer("pager", "host-1")
    assert (made.group, made.name) == ("pager", "host-1")


def test_the_backlog_is_the_group_s_own_among_others(client: Any) -> None:
    store = open_store(client, shards=2)
    first, second = consumer(store, "a", "c"), consumer(store, "b", "c")
    assert first.read(10) == second.read(10) == []  # both groups exist on both shards
    produce(store, 5)
    taken = first.read(2)  # delivered to "a", not acked
    a, b = first.backlog(), second.backlog()
    assert (a.total_lag, a.total_pending) == (3, 2)
    assert (b.total_lag, b.total_pending) == (5, 0)  # "a" is listed first in XINFO GROUPS
    assert sum(a.pending.values()) == len(taken)


def test_a_group_an_admin_destroyed_in_a_shard_reads_as_unknown_lag(client: Any) -> None:
    store = open_store(client, shards=2)
    mine = consumer(store, "g", "c")
    assert mine.read(10) == []
    produce(store, 4)
    client.xgroup_destroy(store.core.keys.findings(1), "g")
    backlog = mine.backlog()
    assert backlog.lag[1] is None and backlog.pending[1] == 0
    assert backlog.lag[0] is not None
    assert backlog.total_lag == backlog.lag[0]  # the unknown lag is left out of the total


@pytest.mark.redis_only
def test_news_another_consumer_took_is_not_an_answer_the_read_waits_on(
    redis_client: Any,
) -> None:
    """The XREAD saw new events, but the group delivered them to another consumer: the
    read waits for the next event (it must not return empty before ``block_ms``)."""
    store = open_store(redis_client)
    late, other = consumer(store, "g", "late"), consumer(store, "g", "other")
    assert late.read(1) == []
    produce(store, 3)
    assert len(other.read(10)) == 3

    def produce_when_blocked() -> None:
        wait_for(lambda: redis_client.info("clients")["blocked_clients"] >= 1)
        produced.extend(produce(store, 1))

    produced: list[str] = []
    producer = threading.Thread(target=produce_when_blocked)
    producer.start()
    try:
        got = late.read(10, block_ms=60_000)
    finally:
        producer.join(60)
    assert [f.stream_id for f in got] == produced


def test_a_claim_goes_past_one_xautoclaim_page(client: Any) -> None:
    store = open_store(client)
    made = produce(store, CLAIM_PAGE + 20)
    dead = consumer(store, "g", "dead")
    assert len(dead.read(1000)) == len(made)  # delivered, never acked
    taken = consumer(store, "g", "heir").claim(0, 1000)
    assert [f.stream_id for f in taken] == made
    pending = client.xpending(store.core.keys.findings(0), "g")
    assert pending["pending"] == len(made)
    assert {c["name"]: c["pending"] for c in pending["consumers"]} in (
        {b"heir": len(made)},
        {"heir": len(made)},
    )


@pytest.mark.redis_only
def test_acking_nothing_or_gap_records_sends_no_xack(redis_client: Any) -> None:
    store = open_store(redis_client)
    mine = consumer(store, "g", "c")
    assert mine.read(10) == []
    redis_client.config_resetstat()
    gap = gap_record(0, 3, 1, "g", TRIMMED_UNREAD)  # a GAP record has no stream id
    assert mine.ack([]) == 0
    assert mine.ack([gap]) == 0
    assert "cmdstat_xack" not in redis_client.info("commandstats")


def test_a_dead_letter_keeps_domain_action_and_due_time(client: Any) -> None:
    store = open_store(client)
    produce(store, 1, domain="billing", action="charge", due_ms="1700000000000")
    mine = consumer(store, "g", "c")
    (event,) = mine.read(1)
    assert (event.domain, event.action, event.due_ms) == ("billing", "charge", 1_700_000_000_000)
    assert mine.dead_letter(event, "HTTP 500", 3) is not None
    ((_, fields),) = client.xrange(store.core.keys.dead_letters(0))
    values = {k.decode(): v.decode() for k, v in fields.items()}
    assert values["run_id"] == event.run_id and values["dead_reason"] == "HTTP 500"
    assert {k: values[k] for k in ("domain", "action", "due_ms")} == {
        "domain": "billing",
        "action": "charge",
        "due_ms": "1700000000000",
    }


# -- asyncio --------------------------------------------------------------------------
def test_async_dead_letter_and_backlog() -> None:
    server = create_embedded_server()
    raw = create_embedded_client(server)

    async def main() -> tuple[Any, str | None, str | None]:
        async with AsyncAuditStore(
            create_embedded_async_client(server), shards=1, metrics=False
        ) as store:
            mine = AsyncAuditReconciler(store, metrics=False).consumer("g", "c")
            for _ in range(3):
                add_event(raw, store.core.keys, store.core.findings_maxlen)
            first, *_ = await mine.read(10)
            moved = await mine.dead_letter(first, "HTTP 500", 2)
            again = await mine.dead_letter(first, "HTTP 500", 2)  # not pending any more
            return await mine.backlog(), moved, again

    backlog, moved, again = asyncio.run(main())
    assert (backlog.total_lag, backlog.total_pending) == (0, 2)
    assert moved is not None and again is None
    ((entry_id, fields),) = raw.xrange("rac:{0}:findings:dead")
    assert entry_id.decode() == moved
    assert fields[b"dead_reason"] == b"HTTP 500" and fields[b"dead_tries"] == b"2"


@pytest.mark.cluster
def test_async_read_on_a_cluster_polls_until_an_event_comes(cluster: LocalCluster) -> None:
    """A cluster has no blocking XREAD over every shard: the consumer polls, pausing between
    rounds, until an event comes (produced once a whole round found nothing)."""
    shards = 4
    admin = cluster.client()
    nodes = [cluster.node_client(port) for port in cluster.primary_ports()]

    def xreads() -> int:
        stats = [node.info("commandstats").get("cmdstat_xread", {}) for node in nodes]
        return sum(int(s.get("calls", 0)) for s in stats)

    produced: list[str] = []

    async def main() -> list[Any]:
        client = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=cluster.ports[0])
        async with AsyncAuditStore(client, shards=shards, metrics=False) as store:
            mine = AsyncAuditReconciler(store, metrics=False).consumer("g", "c")
            assert await mine.read(10) == []
            before = xreads()

            def produce_after_a_round() -> None:
                wait_for(lambda: xreads() >= before + shards)  # one XREAD per shard: nothing
                keys = store.core.keys
                produced.append(add_event(admin, keys, store.core.findings_maxlen)[1])

            producer = threading.Thread(target=produce_after_a_round)
            producer.start()
            try:
                return await mine.read(10, block_ms=60_000)
            finally:
                await asyncio.to_thread(producer.join, 60)

    try:
        got = asyncio.run(main())
    finally:
        for node in nodes:
            node.close()
        admin.close()
    assert [(f.type, f.stream_id) for f in got] == [(FindingType.INCOMPLETE, produced[0])]
