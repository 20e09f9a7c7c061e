"""The store on a real local Redis Cluster: one slot per call, shards on every primary.

The whole contract suite also runs on the cluster (the ``cluster`` backend of
conftest.py); these tests check what only a cluster has.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from rac_store import (
    AckOutcome,
    AuditExpectation,
    AuditStatus,
    AuditStore,
    FindingType,
    StoreDurabilityMode,
    StoreUnavailableError,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.cli import main
from rac_store.cluster.layout import imbalance, shard_owners
from rac_store.keys import KeySpace
from rac_store.reconciler import AuditReconciler
from rac_store.scripts import Script

from .support.cluster import LocalCluster, NodeStats
from .support.redis_server import free_port

pytestmark = pytest.mark.cluster


def runs_in_every_shard(keys: KeySpace, per_shard: int = 2) -> list[str]:
    """Run ids, ``per_shard`` in each shard."""
    found: dict[int, list[str]] = {s: [] for s in range(keys.shards)}
    while any(len(runs) < per_shard for runs in found.values()):
        run = str(uuid.uuid4())
        shard = keys.shard_of(run)
        if len(found[shard]) < per_shard:
            found[shard].append(run)
    return [run for runs in found.values() for run in runs]


def workload(store: AuditStore, runs: list[str]) -> None:
    """Every public method of the store, on every run."""
    for run in runs:
        rid = uuid.UUID(run)
        store.add_expectations(run, create_run_expectations(rid))
        store.add_ack(run, create_domain_ack(rid, "incidents", "create_incident"))
        store.add_acks(
            run,
            [
                create_domain_ack(rid, "policies", "evaluate_policy", error="boom"),
                create_domain_ack(rid, "policies", "evaluate_policy"),
                create_domain_ack(rid, "x", "drift"),
            ],
        )
        store.update_expectation_status(run, "logs", "start_trace", AuditStatus.MISSING)
        assert len(store.get_expectations(run)) == 4
        assert len(store.get_acks(run)) == 4
        assert store.load_from_redis(run)
    assert sorted(store.get_pending_run_ids()) == sorted(runs)
    now = store.server_time_ms()
    assert store.get_pending_run_ids(due_before=now) == []
    assert len(store.get_pending_run_ids(limit=3)) == 3
    for run in runs[::2]:
        assert store.clear_run(run)
    assert sorted(store.get_pending_run_ids()) == sorted(runs[1::2])


def test_no_crossslot_ever_and_every_primary_serves_scripts(cluster: LocalCluster) -> None:
    store = AuditStore(cluster.client())
    runs = runs_in_every_shard(store.core.keys)
    store.get_pending_run_ids()  # one connection to every primary, before the counters
    cluster.flush_scripts()  # the workload meets NOSCRIPT on every primary (the data and the
    # store epochs stay: flushing them would be a reset, refused with StoreResetError)
    stats = NodeStats(cluster)
    stats.reset()

    workload(store, runs)

    errors = stats.read("errorstats")
    commands = stats.read("commandstats")
    stats.close()
    for port, seen in errors.items():
        assert "errorstat_CROSSSLOT" not in seen, port
        # The only refusals: the first EVALSHA of a script (its reload reaches every primary).
        assert set(seen) <= {"errorstat_NOSCRIPT"}, (port, seen)
    primaries = cluster.primary_ports()
    for port in primaries:
        evalsha = commands[port]["cmdstat_evalsha"]
        assert evalsha["calls"] > 0, port
        refused = evalsha["rejected_calls"] + evalsha["failed_calls"]
        assert refused == errors[port].get("errorstat_NOSCRIPT", {"count": 0})["count"]
        assert refused <= len(tuple(Script))  # each script reloaded at most once per primary
    for port in set(cluster.ports) - set(primaries):
        assert "cmdstat_evalsha" not in commands[port]  # replicas only replicate effects
    store.close()


def test_shards_spread_over_every_primary(cluster: LocalCluster) -> None:
    store = AuditStore(cluster.client())
    keys = store.core.keys
    shard_owner = {}
    with cluster.node_client(cluster.ports[0]) as node:
        for shard in range(keys.shards):
            slot = node.cluster("KEYSLOT", keys.pending(shard))
            shard_owner[shard] = cluster.owner_of_slot(int(slot))
    per_primary = Counter(shard_owner.values())
    assert set(per_primary) == set(cluster.primary_ports())
    assert min(per_primary.values()) >= 2  # 16 shards over 3 primaries: none starved

    for run in runs_in_every_shard(keys, per_shard=1):
        store.add_expectations(run, create_run_expectations(uuid.UUID(run)))
        slot = key_slot(keys.pending(keys.shard_of(run)).encode())
        owner = shard_owner[keys.shard_of(run)]
        for port in cluster.primary_ports():
            with cluster.node_client(port) as node:  # pending, exp, st, due, epoch
                count = node.cluster("COUNTKEYSINSLOT", slot)
                assert count == (5 if port == owner else 0)
    meta_owner = cluster.owner_of_slot(key_slot(keys.meta.encode()))
    for port, count in per_primary.items():
        with cluster.node_client(port) as node:  # per shard: pending, exp, st, due, epoch
            assert node.dbsize() == 5 * count + (port == meta_owner)
    store.close()


def test_pending_reads_fan_out_one_pipeline_per_primary(cluster: LocalCluster) -> None:
    store = AuditStore(cluster.client())
    runs = runs_in_every_shard(store.core.keys, per_shard=1)
    for deadline, run in enumerate(runs):
        store.add_expectations(run, [AuditExpectation(uuid.UUID(run), "d", "a", 60_000 + deadline)])
    stats = NodeStats(cluster)
    stats.reset()
    assert store.get_pending_run_ids() == runs  # earliest due first, across all primaries
    commands = stats.read("commandstats")
    stats.close()
    with cluster.node_client(cluster.ports[0]) as node:
        owners = Counter(
            cluster.owner_of_slot(int(node.cluster("KEYSLOT", key)))
            for key in store.core.keys.all_pending()
        )
    for port in cluster.primary_ports():
        assert commands[port]["cmdstat_zrangebyscore"]["calls"] == owners[port]
    store.close()


def test_from_cluster_url_and_environment(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_scheme = AuditStore.from_url(cluster.url)
    by_option = AuditStore.from_url(cluster.url.replace("redis+cluster", "redis"), cluster=True)
    monkeypatch.setenv("RAC_REDIS_URL", cluster.url)
    monkeypatch.setenv("AOS_MODE", "prod")
    from_env = AuditStore()
    for store in (by_scheme, by_option, from_env):
        assert isinstance(store.client, RedisCluster)
        assert store.durability_mode is StoreDurabilityMode.REDIS
    run = uuid.uuid4()
    by_scheme.add_expectations(run, create_run_expectations(run))
    by_option.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
    assert [a.action for a in from_env.get_acks(run)] == ["start_trace"]
    for store in (by_scheme, by_option, from_env):
        store.close()


def test_a_seed_list_survives_a_dead_first_seed(cluster: LocalCluster) -> None:
    dead = f"127.0.0.1:{free_port()}"
    live = cluster.url.removeprefix("redis+cluster://")
    store = AuditStore.from_url(f"redis+cluster://{dead},{live}")
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    assert store.load_from_redis(run)
    store.close()
    with pytest.raises(StoreUnavailableError, match=r"no seed of redis\+cluster://127\.0") as e:
        AuditStore.from_url(f"redis+cluster://u:secret@{dead}")
    assert "secret" not in str(e.value)


def test_script_cache_lost_on_every_node_is_reloaded(cluster: LocalCluster) -> None:
    store = AuditStore(cluster.client())
    runs = runs_in_every_shard(store.core.keys, per_shard=1)
    for run in runs:
        store.add_expectations(run, create_run_expectations(uuid.UUID(run)))
    for port in cluster.ports:
        with cluster.node_client(port) as node:
            node.script_flush()
    stats = NodeStats(cluster)
    stats.reset()
    for run in runs:
        store.add_ack(run, create_domain_ack(uuid.UUID(run), "logs", "start_trace"))
        statuses = {e.action: e.status for e in store.get_expectations(run)}
        assert statuses["start_trace"] is AuditStatus.ACKED
    store.close()
    # The reload really happened on every primary: NOSCRIPT met, the text sent, the cache full.
    shas = [store._scripts[name].sha for name in (Script.ADD_ACKS, Script.READ_EXPECTATIONS)]
    commands = stats.read("commandstats")
    for port in cluster.primary_ports():
        assert stats.errors(port)["NOSCRIPT"] == 2  # add_acks, read_expectations: once each
        assert commands[port]["cmdstat_eval"]["calls"] == 2
        assert stats.clients[port].script_exists(*shas) == [True, True]
    stats.close()


def test_cluster_layout_reports_the_live_owner_of_every_shard(
    cluster: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    client = cluster.client()
    keys = KeySpace("lay", 64)
    owners = shard_owners(client, keys)
    assert sorted(s for shards in owners.values() for s in shards) == list(range(64))
    for name, shards in owners.items():
        port = int(name.rsplit(":", 1)[1])
        for shard in shards:
            assert cluster.owner_of_slot(key_slot(keys.pending(shard).encode())) == port
    assert 1.0 <= imbalance(owners) < 1.25  # 64 shards over 3 primaries: 21 or 22 each

    AuditStore(client, prefix="lay", shards=64).close()
    assert main(["cluster-layout", "--redis-url", cluster.url, "--prefix", "lay"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("64 shards (prefix 'lay') over 3 primaries")
    assert len([line for line in out.splitlines() if line.startswith("  127.0.0.1:")]) == 3
    assert "uneven" not in out


def test_calls_go_straight_to_the_slots_primary_and_follow_moved(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = cluster.client()
    store = AuditStore(client)
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    store.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))  # script cached
    assert store._sender.router.rerouted.total() == 0  # every call went straight to its primary

    right = client.get_node_from_key(store.core.keys.for_run(str(run)).pending)
    wrong = next(node for node in client.get_primaries() if node.name != right.name)
    monkeypatch.setattr(client, "get_node_from_key", lambda key, replica=False: wrong)
    stats = NodeStats(cluster)
    stats.reset()
    outcome = store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
    assert outcome is AckOutcome.RECORDED
    assert stats.errors(wrong.port)["MOVED"] == 1  # the short path met MOVED ...
    assert store._sender.router.rerouted == {"MovedError": 1}  # ... the cluster client took over
    stats.close()
    monkeypatch.undo()
    statuses = {e.action: e.status for e in store.get_expectations(run)}
    assert statuses["start_trace"] is AuditStatus.ACKED
    store.close()


def test_sweep_and_findings_fan_out_over_every_primary(cluster: LocalCluster) -> None:
    store = AuditStore(cluster.client(), metrics=False)
    reconciler = AuditReconciler(store, metrics=False)
    runs = runs_in_every_shard(store.core.keys, per_shard=1)
    for run in runs:
        store.add_expectations(run, [AuditExpectation(uuid.UUID(run), "d", "late", 0)])
    time.sleep(0.01)  # every deadline is behind the server clocks
    stats = NodeStats(cluster)
    stats.reset()

    report = reconciler.sweep(limit=1000)

    assert sorted(f.run_id for f in report.missing) == sorted(runs)
    assert not report.more_due
    commands = stats.read("commandstats")
    stats.close()
    for port in cluster.primary_ports():  # each primary ran the sweep script of its runs
        assert commands[port]["cmdstat_evalsha"]["calls"] > 0
    events = list(reconciler.iter_findings(since="0"))
    missing_by_shard = {e.shard for e in events if e.type is FindingType.MISSING}
    assert missing_by_shard == set(range(store.core.keys.shards))
    positions = reconciler.findings_positions()
    assert list(reconciler.iter_findings(since=positions)) == []
    store.close()
