"""The add_acks call: one builder for single acks, batches and acks merged per shard."""

from __future__ import annotations

import uuid

import fakeredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rac_store import AckOutcome, AckStatus, AuditExpectation, AuditStore, DomainAck
from rac_store.acks import ack_group, add_acks_call, merge_by_shard, single_ack_group
from rac_store.core import StoreCore, parse_outcomes
from rac_store.keys import KeySpace

from .support.async_helpers import run_on_shard

CORE = StoreCore(KeySpace("rac", 16), 3600)
SETTINGS = CORE.ack_settings


def group(ack: DomainAck):  # type: ignore[no-untyped-def]
    return single_ack_group(CORE.keys, ack.run_id, ack)


def test_groups_by_shard_then_run_and_names_each_outcomes_owner() -> None:
    a, b, c = run_on_shard(1), run_on_shard(1), run_on_shard(2)
    acks = [DomainAck(a, "d", "1"), DomainAck(c, "d", "2"), DomainAck(b, "d", "3")]
    acks += [DomainAck(a, "d", "4")]
    merged = merge_by_shard([group(ack) for ack in acks], SETTINGS)

    assert [m.call.keys[0] for m in merged] == ["rac:{1}:pending", "rac:{2}:pending"]
    first, second = merged
    assert list(first.call.keys[1:]) == [
        *CORE.keys.for_run(str(a)).run_keys,
        *CORE.keys.for_run(str(b)).run_keys,
        "rac:{1}:findings",  # then the shard's findings stream
        "rac:{1}:epoch",  # and its store epoch, last
    ]
    assert first.owners == [0, 3, 2]  # run a's acks in order, then run b's
    args = first.call.args
    assert isinstance(args[1], bytes) and len(args[1]) == 8  # the call token
    assert second.call.args[1] != args[1]  # each merged call has its own
    assert [args[0], *args[2:5]] == [3_600_000, 2, str(a), 2]
    assert args[5] == acks[0].id.bytes and args[9] == acks[3].id.bytes
    assert args[13:15] == [str(b), 1]
    assert args[-2] == CORE.findings_maxlen  # so does the stream's bound
    assert args[-1] == ""  # and the epoch (none: CORE never opened, the script refuses it)
    assert len(args) == 3 + 2 * 2 + 4 * 3 + 2
    assert second.owners == [1]
    assert first.call.operation == "add_ack"


def test_multi_ack_groups_own_every_outcome() -> None:
    run = uuid.uuid4()
    groups = [
        ack_group(CORE.keys, run, [DomainAck(run, "d", "1"), DomainAck(run, "d", "2")]),
        group(DomainAck(run, "d", "3")),
    ]
    (merged,) = merge_by_shard(groups, SETTINGS)
    assert merged.owners == [0, 0, 1]
    assert merged.call.args[4] == 3


def test_single_acks_and_batches_are_built_by_the_same_layout() -> None:
    run = uuid.uuid4()
    ack = DomainAck(run, "d", "a")
    single, batch = CORE.add_ack(run, ack), CORE.add_acks(run, [ack])
    assert single.keys == batch.keys
    assert [*single.args[:1], *single.args[2:]] == [*batch.args[:1], *batch.args[2:]]
    assert single.args[1] != batch.args[1]  # two logical calls, two tokens


def test_a_one_run_call_has_the_layout_of_a_many_run_call() -> None:
    """The one-group short cut lays KEYS and ARGV out as the general loop does."""
    a, b = run_on_shard(3), run_on_shard(3)
    ga = ack_group(CORE.keys, a, [DomainAck(a, "d", "1"), DomainAck(a, "d", "2")])
    gb = group(DomainAck(b, "d", "3"))
    one, two = add_acks_call([ga], SETTINGS), add_acks_call([ga, gb], SETTINGS)
    keys_a = CORE.keys.for_run(str(a))
    assert list(one.keys) == [keys_a.pending, *keys_a.run_keys, keys_a.findings, keys_a.epoch]
    run_b = CORE.keys.for_run(str(b)).run_keys
    assert list(two.keys) == [*one.keys[:-2], *run_b, *one.keys[-2:]]
    assert list(one.args) == [3_600_000, one.args[1], 1, str(a), 2, *ga.values, 10_000, ""]
    assert list(two.args) == [
        3_600_000,
        two.args[1],
        2,
        *one.args[3:-2],
        str(b),
        1,
        *gb.values,
        10_000,
        "",  # the store epoch (this core never opened a store)
    ]


def test_refuses_groups_of_two_shards_in_one_call() -> None:
    a, c = run_on_shard(1), run_on_shard(2)
    with pytest.raises(ValueError, match="share a shard"):
        add_acks_call([group(DomainAck(a, "d", "x")), group(DomainAck(c, "d", "y"))], SETTINGS)
    assert merge_by_shard([], SETTINGS) == []


RUNS = [run_on_shard(4), run_on_shard(4), run_on_shard(9)]
Pick = tuple[int, int, bool, int | None]
"""(run index, action index, ok, index of an earlier ack to repeat or None)."""


def _acks(picks: list[Pick]) -> list[DomainAck]:
    acks: list[DomainAck] = []
    for run, action, ok, repeat in picks:
        if repeat is not None and repeat < len(acks):
            acks.append(acks[repeat])  # the same ack again: a duplicate
            continue
        status = AckStatus.SUCCESS if ok else AckStatus.FAILED
        acks.append(DomainAck(RUNS[run], "d", f"a{action}", status=status))
    return acks


def _store() -> AuditStore:
    store = AuditStore(fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 0))))
    for run in RUNS:
        store.add_expectations(run, [AuditExpectation(run, "d", f"a{j}", 60_000) for j in range(3)])
    return store


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 4),
            st.booleans(),
            st.one_of(st.none(), st.integers(0, 15)),
        ),
        min_size=1,
        max_size=16,
    )
)
def test_merged_calls_do_what_the_single_calls_do(picks: list[Pick]) -> None:
    """Outcomes, stored acks, statuses and index match, call by call or merged per shard."""
    acks = _acks(picks)
    one_by_one, merged_store = _store(), _store()
    single = [one_by_one.add_ack(a.run_id, a) for a in acks]
    outcomes: list[AckOutcome | None] = [None] * len(acks)
    groups = [single_ack_group(merged_store.core.keys, a.run_id, a) for a in acks]
    for merged in merge_by_shard(groups, merged_store.core.ack_settings):
        reply = merged_store.execute(merged.call)
        for owner, outcome in zip(merged.owners, parse_outcomes(reply), strict=True):
            outcomes[owner] = outcome
    assert outcomes == single
    for run in RUNS:
        assert one_by_one.get_acks(run) == merged_store.get_acks(run)
        assert [(e.key(), e.status) for e in one_by_one.get_expectations(run)] == [
            (e.key(), e.status) for e in merged_store.get_expectations(run)
        ]
    # (order aside: runs declared within one millisecond in one store tie there)
    assert sorted(one_by_one.get_pending_run_ids()) == sorted(merged_store.get_pending_run_ids())
