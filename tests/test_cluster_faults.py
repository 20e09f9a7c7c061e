"""Slot migration and failovers while real processes ack: nothing lost, no error to callers.

Each test starts its own cluster (the topology changes) and 4 worker
processes (spawn) that ack one call at a time. The figures (time the slot was
moving or the failover took, redirections met, slowest ack) are printed; run
with ``-s`` to see them. Nothing here asserts a duration.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from redis.crc import key_slot

from rac_store import AuditExpectation, AuditStatus, AuditStore, RACStoreError, RetryPolicy

from .support.ack_load import AckLoad, Job, WorkerReport
from .support.cluster import LocalCluster, NodeStats, failover, migrate_slot

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ACTIONS = 50


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A cluster of this test's own."""
    cluster = LocalCluster().start()
    yield cluster
    cluster.cleanup()


def pick_runs(store: AuditStore, count: int, shard: int | None = None) -> list[str]:
    """``count`` run ids, all in ``shard`` when given."""
    runs: list[str] = []
    while len(runs) < count:
        run = str(uuid.uuid4())
        if shard is None or store.core.keys.shard_of(run) == shard:
            runs.append(run)
    return runs


def declare(store: AuditStore, runs: list[str]) -> list[Job]:
    """ACTIONS expectations per run; the acks that fulfil them, shuffled."""
    jobs: list[Job] = []
    for run in runs:
        rid = uuid.UUID(run)
        store.add_expectations(
            run, [AuditExpectation(rid, "d", f"a{i}", 600_000) for i in range(ACTIONS)]
        )
        jobs += [(run, "d", f"a{i}") for i in range(ACTIONS)]
    random.Random(7).shuffle(jobs)
    return jobs


def assert_nothing_lost(store: AuditStore, runs: list[str], report: WorkerReport) -> None:
    """Every call returned, every ack is stored exactly once, every expectation ACKED."""
    assert report.errors == []
    assert len(report.recorded) == len(runs) * ACTIONS
    stored = Counter((run, ack.id.hex) for run in runs for ack in store.get_acks(run))
    assert set(stored) == set(report.recorded)
    assert max(stored.values()) == 1
    for run in runs:
        statuses = {e.status for e in store.get_expectations(run)}
        assert statuses == {AuditStatus.ACKED}
    assert store.get_pending_run_ids() == []


def assert_lost_only_to_replication(
    store: AuditStore, runs: list[str], report: WorkerReport, on_victim: set[str]
) -> set[tuple[str, str]]:
    """After a SIGKILL'd primary: every call returned, nothing is stored twice or invented,
    and the only acks missing are acks of runs on the killed primary (acknowledged by it, not
    yet replicated: docs/reliability.md, "replication is asynchronous"). Returns those."""
    assert report.errors == []
    assert len(report.recorded) == len(runs) * ACTIONS
    stored = Counter((run, ack.id.hex) for run in runs for ack in store.get_acks(run))
    assert max(stored.values()) == 1
    assert set(stored) <= set(report.recorded)
    lost = set(report.recorded) - set(stored)
    assert {run for run, _ in lost} <= on_victim
    acked = {(run, e.action) for run in runs for e in store.get_expectations(run)
             if e.status is AuditStatus.ACKED}  # fmt: skip
    assert len(acked) == len(runs) * ACTIONS - len(lost)
    return lost


class Reader(threading.Thread):
    """Reads every shard (and one moving run) in a loop until the ``with`` block ends."""

    def __init__(self, store: AuditStore, runs: list[str]) -> None:
        super().__init__(daemon=True)
        self.store, self.runs = store, runs
        self.reads = 0
        self.errors: list[str] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                self.store.get_pending_run_ids(limit=10)
                self.store.get_acks(self.runs[self.reads % len(self.runs)])
            except RACStoreError as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.reads += 1

    def __enter__(self) -> Reader:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self.join(10)
        self.store.close()


def by_run(keys: list[bytes]) -> list[list[bytes]]:
    """The shard's own keys first (pending index, store epoch, findings stream: every ack
    call takes them), then each run's keys together.

    A run whose keys have all moved gets ASK redirections (served by the target);
    a run split between the nodes gets TRYAGAIN until its last key has moved.
    """
    shard_keys = (b":pending", b":epoch", b":findings")
    runs: dict[bytes, list[bytes]] = {}
    for key in sorted(keys):
        if not key.endswith(shard_keys):
            runs.setdefault(key.rsplit(b":", 1)[-1], []).append(key)
    return [[key for key in keys if key.endswith(shard_keys)], *runs.values()]


def latency_ms(report: WorkerReport) -> str:
    ordered = sorted(report.latencies)
    p50, p99 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]
    return f"ack p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, max {ordered[-1] * 1e3:.0f} ms"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_slot_migration_under_load_loses_nothing(own_cluster: LocalCluster, mode: str) -> None:
    cluster = own_cluster
    store = AuditStore(cluster.client())
    busy = pick_runs(store, 40, shard=0)  # the shard whose slot moves
    runs = busy + pick_runs(store, 24)
    jobs = declare(store, runs)
    slot = key_slot(store.core.keys.pending(0).encode())
    source = cluster.owner_of_slot(slot)
    target = next(port for port in cluster.primary_ports() if port != source)
    with cluster.node_client(target) as node:
        node.script_flush()  # ASK redirections meet NOSCRIPT on the target
    stats = NodeStats(cluster)
    stats.reset()

    with Reader(AuditStore(cluster.client()), busy) as reader:  # cross-shard reads meanwhile
        moved, during, report = AckLoad(cluster.url, jobs, mode=mode).around(
            lambda: migrate_slot(cluster, slot, target, batch=5, pause=0.02, batcher=by_run)
        )

    assert reader.errors == []
    assert reader.reads > 0
    assert_nothing_lost(store, runs, report)
    assert cluster.owner_of_slot(slot) == target
    with cluster.node_client(source) as node:
        assert node.cluster("COUNTKEYSINSLOT", slot) == 0
    in_shard = sum(store.core.keys.shard_of(run) == 0 for run in runs)
    with cluster.node_client(target) as node:
        # per run exp, st, acks, ackid (due and index emptied), the shard's findings stream and
        # its store epoch
        assert node.cluster("COUNTKEYSINSLOT", slot) == 4 * in_shard + 2
    met = stats.errors(source) + stats.errors(target)
    stats.close()
    assert met["MOVED"] > 0 and met["TRYAGAIN"] > 0
    if mode == "sync":  # an ack of a run whose keys have all moved is served after ASK
        assert report.rerouted["AskError"] > 0 and report.rerouted["TryAgainError"] > 0
    # (async calls merge the acks of many runs of the shard: ASK needs every one of them moved)
    print(
        f"\n{mode} slot migration: {moved.keys} keys of slot {slot} moved in {moved.seconds:.2f} s "
        f"while {during} acks were sent and {reader.reads} cross-shard reads made; "
        f"{len(jobs)} acks, 0 errors, 0 lost; redirections: {met['ASK']} ASK, "
        f"{met['TRYAGAIN']} TRYAGAIN, {met['MOVED']} MOVED, {met['NOSCRIPT']} NOSCRIPT "
        f"(reads included); acks rerouted {dict(report.rerouted)}; {latency_ms(report)}"
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_failover_mid_load_reloads_scripts_with_zero_errors(
    own_cluster: LocalCluster, mode: str
) -> None:
    cluster = own_cluster
    store = AuditStore(cluster.client())
    runs = pick_runs(store, 64)
    jobs = declare(store, runs)
    shards_of = Counter(
        cluster.owner_of_slot(key_slot(key.encode())) for key in store.core.keys.all_pending()
    )
    victim = shards_of.most_common(1)[0][0]
    replica = cluster.replica_of(victim)
    sha = store._scripts["add_acks"].sha
    with cluster.node_client(replica) as node:
        node.script_flush()  # whatever a replica may hold, the new primary starts empty
        assert node.script_exists(sha) == [False]
    stats = NodeStats(cluster)
    stats.reset()

    (promoted, seconds), during, report = AckLoad(cluster.url, jobs, mode=mode).around(
        lambda: failover(cluster, victim)
    )

    assert promoted == replica
    assert during > 0  # acks went on while the primary was replaced
    assert_nothing_lost(store, runs, report)
    assert cluster.replica_of(replica) == victim  # the old primary follows the new one
    noscript = stats.errors(replica)["NOSCRIPT"]
    moved = stats.errors(victim)["MOVED"]
    stats.close()
    assert noscript >= 1  # the new primary's empty cache was met, and reloaded
    assert moved >= 1  # clients met the old primary after it handed its slots over
    with cluster.node_client(replica) as node:
        assert node.script_exists(sha) == [True]
    print(
        f"\n{mode} failover: {shards_of[victim]} of 16 shards' primary replaced in {seconds:.2f} s "
        f"while {during} acks were sent; {len(jobs)} acks, 0 errors, 0 lost; "
        f"{moved} MOVED, {noscript} NOSCRIPT on the new primary; {latency_ms(report)}"
    )


OUTAGE_POLICY = RetryPolicy(attempts=12, base_delay=0.05, max_delay=1.0)
"""About 7.5 s of re-sends: covers cluster-node-timeout (2 s here) plus the election."""


def test_killed_primary_with_a_policy_sized_for_the_outage(own_cluster: LocalCluster) -> None:
    cluster = own_cluster
    store = AuditStore(cluster.client())
    runs = pick_runs(store, 64)
    jobs = declare(store, runs)
    victim = cluster.primary_ports()[0]
    replica = cluster.replica_of(victim)
    with cluster.node_client(replica) as node:
        node.script_flush()  # the new primary will start with an empty cache
    stats = NodeStats(cluster)
    stats.reset()
    del stats.clients[victim]  # about to die

    def kill() -> float:
        killed = time.monotonic()
        cluster.server(victim).kill()  # SIGKILL: no goodbye, the cluster must notice
        assert wait_promoted(cluster, replica)
        return time.monotonic() - killed

    on_victim = {
        run
        for run in runs
        if cluster.owner_of_slot(key_slot(store.core.keys.for_run(run)[0].encode())) == victim
    }
    outage, during, report = AckLoad(cluster.url, jobs, retry=OUTAGE_POLICY).around(kill)
    lost = assert_lost_only_to_replication(store, runs, report, on_victim)
    # The outage was met: calls to the dead primary failed and were re-sent through the
    # cluster client, and the promoted replica then served them (reloading the scripts).
    lost_connections = report.rerouted["ConnectionError"]
    served = int(stats.read("commandstats")[replica].get("cmdstat_evalsha", {}).get("calls", 0))
    noscript = stats.errors(replica)["NOSCRIPT"]
    stats.close()
    assert lost_connections > 0
    assert served > 0 and noscript >= 1
    print(
        f"\nkilled primary: replica promoted {outage:.1f} s after SIGKILL "
        f"(cluster-node-timeout {cluster.node_timeout_ms} ms); {during} acks sent meanwhile; "
        f"{lost_connections} calls met the dead node and were re-sent; the new primary ran "
        f"{served} EVALSHAs ({noscript} NOSCRIPT); {len(jobs)} acks, 0 errors, {len(lost)} lost "
        f"to asynchronous replication; {latency_ms(report)}"
    )


def wait_promoted(cluster: LocalCluster, replica: int, timeout: float = 30.0) -> bool:
    """Wait until ``replica`` is a primary and the cluster is ok again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError), cluster.node_client(replica) as node:
            state = node.cluster("INFO")["cluster_state"]
            if node.info("replication")["role"] == "master" and state == "ok":
                return True
        time.sleep(0.05)
    return False
