"""Edges of validation and error mapping: bad input gets its typed error and writes nothing."""

from __future__ import annotations

import pickle
import ssl
import uuid
from datetime import datetime
from typing import Any

import prometheus_client
import pytest
import redis
from redis.exceptions import RedisClusterException

from rac_store import (
    AckStatus,
    AsyncAuditStore,
    AuditExpectation,
    AuditStatus,
    AuditStore,
    DomainAck,
    InvalidInputError,
    LayoutMismatchError,
    StoreResponseError,
    StoreTLSError,
)
from rac_store.audited import AuditedAction
from rac_store.cli.connection_errors import explain
from rac_store.cluster.layout import imbalance
from rac_store.connect import client_resends
from rac_store.core import parse_expectations
from rac_store.errors import map_redis_error, tls_failure
from rac_store.metrics import DeliveryMetrics
from rac_store.store_base import StoreBase


# -- models: from_dict ------------------------------------------------------------------
def test_from_dict_fills_defaults_and_factories() -> None:
    """Only the required fields given: the others get their default (or a fresh factory value)."""
    run = uuid.uuid4()
    ack = DomainAck.from_dict({"run_id": str(run), "domain": "d", "action": "a"})
    assert (ack.run_id, ack.domain, ack.action) == (run, "d", "a")
    assert ack.status is AckStatus.SUCCESS and ack.error is None and ack.metadata == {}
    assert isinstance(ack.id, uuid.UUID) and isinstance(ack.created_at, datetime)
    other = DomainAck.from_dict({"run_id": str(run), "domain": "d", "action": "a"})
    assert other.id != ack.id  # a factory per ack, not one shared default
    exp = AuditExpectation.from_dict({"run_id": str(run), "domain": "d", "action": "a"})
    assert (exp.deadline_ms, exp.status, exp.late) == (5000, AuditStatus.PENDING, False)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["run_id", "d", "a"], "DomainAck.from_dict needs a mapping, got list"),
        ({"domain": "d", "action": "a"}, "DomainAck.from_dict: 'run_id' is required"),
        ({"run_id": "x", "domain": "d", "action": "a"}, "DomainAck.from_dict: Invalid UUID"),
        ({"run_id": str(uuid.UUID(int=1)), "domain": 5, "action": "a"}, "Expected `str`"),
        ({"run_id": str(uuid.UUID(int=1)), "domain": "d", "color": "red"}, "no field(s) 'color'"),
    ],
)
def test_from_dict_refuses_what_is_not_an_ack(data: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        DomainAck.from_dict(data)
    assert message in str(caught.value)


# -- core: replies ----------------------------------------------------------------------
def test_expectation_without_a_status_record_keeps_its_own() -> None:
    """An expectation whose status field is absent reads as written (PENDING, not acked)."""
    run = uuid.uuid4()
    store = AuditStore(metrics=False)
    store.add_expectations(run, [AuditExpectation(run, "d", "a", 60_000)])
    stored, _statuses = store.execute(store.core.read_expectations(run))
    [exp] = parse_expectations([stored, []])
    assert (exp.domain, exp.action, exp.status, exp.acked_at, exp.late) == (
        "d",
        "a",
        AuditStatus.PENDING,
        None,
        False,
    )


def test_reading_findings_needs_one_id_per_shard() -> None:
    store = AuditStore(shards=4, metrics=False)
    with pytest.raises(InvalidInputError, match=r"need one stream id per shard \(4\)"):
        store.core.read_findings(["0", "0"], 10, None)


def test_a_layout_of_another_version_is_refused_and_kept(redis_client: Any) -> None:
    """A read-only store meeting another key layout refuses it and changes nothing."""
    redis_client.hset("rac:meta", mapping={"shards": "16", "layout": "0"})
    with pytest.raises(LayoutMismatchError, match="has key layout 0"):
        AuditStore(redis_client, read_only=True, metrics=False).get_pending_run_ids()
    assert redis_client.keys("*") == [b"rac:meta"]
    assert redis_client.hgetall("rac:meta") == {b"shards": b"16", b"layout": b"0"}


# -- errors ------------------------------------------------------------------------------
def test_tls_failure_is_found_behind_causes_and_contexts() -> None:
    tls = ssl.SSLError(1, "certificate verify failed")
    outer = redis.ConnectionError("lost")
    middle = OSError("io")
    outer.__cause__, middle.__context__ = middle, tls
    assert tls_failure(outer) is tls
    assert isinstance(map_redis_error(outer, "op"), StoreTLSError)


def test_tls_failure_gives_up_on_an_endless_chain() -> None:
    """A chain that loops (an error that is its own context) ends the search: no TLS error."""
    first, second = redis.ConnectionError("a"), redis.ConnectionError("b")
    first.__cause__, second.__cause__ = second, first
    assert tls_failure(first) is None


def test_a_client_side_cluster_refusal_is_a_response_error() -> None:
    refused = RedisClusterException("Keys in request don't hash to the same slot")
    error = map_redis_error(refused, "add_acks")
    assert type(error) is StoreResponseError
    assert str(error) == "add_acks: Keys in request don't hash to the same slot"


# -- store options and pickling -----------------------------------------------------------
def test_unknown_store_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected store option\\(s\\): colour, size"):
        AuditStore(colour="red", size=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="colour"):
        AsyncAuditStore.from_url("redis://127.0.0.1:1", colour="red")  # type: ignore[call-arg]


def test_a_store_on_redis_is_refused_by_pickle_with_the_fix(
    redis_client: Any, redis_server: Any
) -> None:
    stores = (AuditStore(redis_client), AsyncAuditStore.from_url(redis_server.url))
    for store in stores:
        name = type(store).__name__
        with pytest.raises(TypeError, match=rf"a {name} cannot be pickled: .*{name}\.from_url"):
            pickle.dumps(store)


def test_the_base_store_makes_no_clients() -> None:
    with pytest.raises(NotImplementedError):
        StoreBase._client_from_url("redis://127.0.0.1:1")


# -- connections -------------------------------------------------------------------------
def test_a_client_without_connection_kwargs_resends_nothing() -> None:
    class Proxy:
        """A client wrapper that hides redis-py's connection settings."""

    assert client_resends(Proxy()) == 0
    assert client_resends(redis.Redis(host="127.0.0.1", port=1)) > 0


# -- audited actions -----------------------------------------------------------------------
def test_audited_action_repr() -> None:
    run = uuid.uuid4()
    assert repr(AuditedAction(run, "d", "a")) == f"AuditedAction({run}, 'd', 'a')"


# -- metrics and layout -----------------------------------------------------------------
def test_lost_events_are_counted_per_group() -> None:
    registry = prometheus_client.CollectorRegistry()
    metrics = DeliveryMetrics(registry)
    metrics.lost("ops", 3)
    metrics.lost("ops", 2)
    metrics.lost("audit", 1)
    value = registry.get_sample_value
    assert value("rac_findings_lost_total", {"group": "ops"}) == 5
    assert value("rac_findings_lost_total", {"group": "audit"}) == 1


def test_imbalance_of_nothing_is_even() -> None:
    assert imbalance({}) == 1.0
    assert imbalance({"a:1": [], "b:2": []}) == 1.0
    assert imbalance({"a:1": [0, 1, 2], "b:2": [3]}) == 1.5


@pytest.mark.parametrize(
    "url",
    [
        "redis://u:pw@[::1:6379",
        "redis+cluster://u:pw@[::1:6379/0",
        "rediss://[::1",
        "redis://:pw/pw@127.0.0.1:6379/0",  # an unencoded '/' in the password: port 'pw'
    ],
)
def test_a_url_urlsplit_refuses_is_invalid_input_without_its_password(url: str) -> None:
    for open_store in (AuditStore.from_url, AsyncAuditStore.from_url):
        with pytest.raises(InvalidInputError, match="not a Redis URL") as refused:
            open_store(url)
        assert "pw" not in str(refused.value)


def test_a_cluster_url_without_a_host_is_refused_before_connecting() -> None:
    for url in ("redis+cluster://:pw@/0", "rediss+cluster:///0", "redis+cluster://,/0"):
        with pytest.raises(InvalidInputError, match="a Redis Cluster URL names a seed host"):
            AuditStore.from_url(url)


def test_a_cluster_url_is_never_told_to_name_the_cluster() -> None:
    moved = redis.exceptions.MovedError("3999 127.0.0.1:6381")
    plain = explain(moved, "redis://127.0.0.1:7000/0", 1.0)
    assert plain is not None and "name the cluster as redis+cluster://127.0.0.1:7000" in plain
    assert "name the cluster" not in str(explain(moved, "redis+cluster://127.0.0.1:7000/0", 1.0))
