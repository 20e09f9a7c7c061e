"""Without a server: every call touches one hash slot, and cluster URLs are read strictly."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from rac_store import AuditExpectation, AuditStatus, create_domain_ack
from rac_store.cluster.layout import imbalance, layout_lines, shard_owners, shard_slots
from rac_store.cluster.urls import split_cluster_url, split_seeds
from rac_store.core import StoreCore
from rac_store.embedded import create_embedded_client
from rac_store.errors import InvalidInputError
from rac_store.keys import KeySpace
from rac_store.scripts import ScriptCall

prefixes = st.text(
    st.characters(exclude_characters="{}|*?[]\\", min_codepoint=33, max_codepoint=126),
    min_size=1,
    max_size=12,
)
shard_counts = st.sampled_from([1, 2, 16, 64, 1024, 16384])
run_ids = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=40).filter(str.strip))


def every_call(core: StoreCore, run: str) -> list[ScriptCall]:
    """One call of every kind the core builds for ``run``."""
    rid = uuid.UUID(run)
    return [
        core.init_meta(),
        core.add_expectations(run, [AuditExpectation(rid, "d", "a")]),
        core.add_ack(run, create_domain_ack(rid, "d", "a")),
        core.add_acks(run, [create_domain_ack(rid, "d", "a"), create_domain_ack(rid, "e", "b")]),
        core.update_status(run, "d", "a", AuditStatus.MISSING),
        core.clear_run(run),
        core.read_expectations(run),
    ]


@settings(max_examples=200, deadline=None)
@given(prefix=prefixes, shards=shard_counts, run=st.uuids().map(str))
def test_every_script_call_touches_one_slot(prefix: str, shards: int, run: str) -> None:
    core = StoreCore(KeySpace(prefix, shards), 60)
    for call in every_call(core, run):
        slots = {key_slot(key.encode()) for key in call.keys}
        assert len(slots) == 1, (call.script, call.keys)
    run_slot = key_slot(core.keys.for_run(run).pending.encode())
    reads = [*core.read_acks(run).commands, *core.run_exists(run).commands]
    plain_keys = [key for command in reads for key in command[1:] if isinstance(key, str)]
    assert len(plain_keys) == 4
    assert {key_slot(key.encode()) for key in plain_keys} == {run_slot}


@settings(max_examples=100, deadline=None)
@given(prefix=prefixes, shards=shard_counts, run=run_ids)
def test_a_runs_slot_is_its_shards_slot(prefix: str, shards: int, run: str) -> None:
    keys = KeySpace(prefix, shards)
    shard = keys.shard_of(run)
    # The hash tag is the shard number alone: no run id or prefix can move a run's slot.
    assert key_slot(keys.for_run(run)[1].encode()) == key_slot(str(shard).encode())


@pytest.mark.parametrize(
    ("url", "cluster", "plain", "is_cluster"),
    [
        ("redis://h:1/0", None, "redis://h:1/0", False),
        ("redis://h:1", True, "redis://h:1", True),
        ("redis+cluster://h:1", None, "redis://h:1", True),
        ("rediss+cluster://u:p@h:1/0", None, "rediss://u:p@h:1/0", True),
        ("REDIS+CLUSTER://h:1", True, "redis://h:1", True),
        ("unix:///tmp/r.sock", None, "unix:///tmp/r.sock", False),
    ],
)
def test_cluster_urls(url: str, cluster: bool | None, plain: str, is_cluster: bool) -> None:
    assert split_cluster_url(url, cluster) == (plain, is_cluster)


@pytest.mark.parametrize(
    ("url", "cluster", "message"),
    [
        ("redis+cluster://h:1", False, "cluster=False"),
        ("redis+cluster://h:1/1", None, "only database 0"),
        ("redis://h:1/2", True, "only database 0"),
        ("unix:///tmp/r.sock", True, "unix socket"),
        ("http://h:1", None, "unsupported URL scheme"),
        ("h:1", None, "not a Redis URL"),
        ("redis://u:secret@h:1,h:2/0", None, "several hosts name a cluster"),
        ("redis+cluster://h:1,h2/0", None, "a seed must be host:port"),
    ],
)
def test_bad_cluster_urls(url: str, cluster: bool | None, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        split_seeds(split_cluster_url(url, cluster)[0])
    assert "secret" not in str(caught.value)


def test_seed_lists() -> None:
    assert split_seeds("redis://u:p@h1:7000,h2:7001, [::1]:7002/0") == (
        "redis://u:p@h1:7000/0",
        [("h2", 7001), ("::1", 7002)],
    )
    assert split_seeds("rediss://h1:7000") == ("rediss://h1:7000", [])


def test_layout_report_flags_an_uneven_spread() -> None:
    keys = KeySpace("rac", 16)
    even = {"a:1": list(range(8)), "b:2": list(range(8, 16))}
    uneven = {"a:1": list(range(12)), "b:2": list(range(12, 16))}
    assert imbalance(even) == 1.0
    assert imbalance(uneven) == 1.5
    assert "uneven" not in "\n".join(layout_lines(even, keys))
    report = layout_lines(uneven, keys)
    assert report[0] == "16 shards (prefix 'rac') over 2 primaries"
    assert "1.50 x its fair share" in report[-2]
    assert report[-1].startswith("uneven")


def test_shard_owners_needs_a_cluster_client() -> None:
    with pytest.raises(InvalidInputError, match="not a Redis Cluster client"):
        shard_owners(create_embedded_client(), KeySpace("rac", 16))


def test_every_shard_has_its_own_slot() -> None:
    for shards in (16, 64, 1024):
        assert len(set(shard_slots(KeySpace("rac", shards)))) == shards
