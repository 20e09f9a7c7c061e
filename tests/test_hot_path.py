"""The hot path: one EVALSHA per add_ack, and recovery when the server forgot the scripts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from rac_store import (
    AckOutcome,
    AuditStatus,
    AuditStore,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.scripts import Script

from .conftest import SYNC_BACKENDS
from .support.cluster import serving_node
from .support.proxy import swap_client

pytestmark = pytest.mark.parametrize("backend", SYNC_BACKENDS, indirect=True)


class CountingClient:
    """A client proxy that counts the commands the store sends (and can flush scripts)."""

    def __init__(self, client: Any, flush_before_each_eval: bool = False) -> None:
        self._client = client
        self.sent: list[str] = []
        self._flush = flush_before_each_eval

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        command = str(args[0]).upper()
        if self._flush and command == "EVALSHA":
            self._client.script_flush()
        self.sent.append(command)
        return self._client.execute_command(*args, **options)


def _declared(store: AuditStore) -> uuid.UUID:
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    return run


def test_add_ack_is_one_evalsha(store: AuditStore, raw_client: Any) -> None:
    run = _declared(store)
    store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))  # script now loaded
    counting = CountingClient(raw_client)
    swap_client(store, counting)
    for action in ("create_incident", "evaluate_policy"):
        domain = "incidents" if action == "create_incident" else "policies"
        assert store.add_ack(run, create_domain_ack(run, domain, action)) is AckOutcome.RECORDED
    assert counting.sent == ["EVALSHA", "EVALSHA"]


def test_every_script_is_reloaded_after_script_flush(store: AuditStore, raw_client: Any) -> None:
    run = _declared(store)
    counting = CountingClient(raw_client)
    swap_client(store, counting)
    raw_client.script_flush()
    assert store.add_ack(run, create_domain_ack(run, "logs", "start_trace")) is AckOutcome.RECORDED
    assert counting.sent == ["EVALSHA", "EVAL"]  # NOSCRIPT: the text goes, and is cached
    raw_client.script_flush()
    assert store.add_acks(run, [create_domain_ack(run, "x", "y")]) == [AckOutcome.DRIFT]
    raw_client.script_flush()
    assert store.update_expectation_status(run, "policies", "evaluate_policy", "MISSING")
    raw_client.script_flush()
    assert len(store.get_expectations(run)) == 4
    raw_client.script_flush()
    assert store.clear_run(run)
    assert counting.sent.count("EVAL") == 5
    # On a cluster, NOSCRIPT is met (and the text cached) on the run's primary only.
    node = serving_node(raw_client, store.core.keys.for_run(str(run)).pending)
    exists = node.script_exists(*(store._scripts[name].sha for name in tuple(Script)))
    loaded = {name for name, there in zip(tuple(Script), exists, strict=True) if there}
    assert loaded == {"clear_run"}  # only the script used since the last flush


def test_script_flushed_between_every_call(store: AuditStore, raw_client: Any) -> None:
    """A NOSCRIPT before every EVALSHA still lets each call through, once each."""
    run = _declared(store)
    counting = CountingClient(raw_client)
    swap_client(store, counting)
    acks = [create_domain_ack(run, "logs", f"a{i}") for i in range(20)]
    for ack in acks:
        raw_client.script_flush()
        assert store.add_ack(run, ack) is AckOutcome.DRIFT
    assert counting.sent == ["EVALSHA", "EVAL"] * 20
    assert [a.id for a in store.get_acks(run)] == [a.id for a in acks]


def test_a_script_that_never_stays_loaded_still_runs_once(
    store: AuditStore, raw_client: Any
) -> None:
    """A cache emptied before every EVALSHA: the script's text (EVAL) runs it, once."""
    run = _declared(store)
    counting = CountingClient(raw_client, flush_before_each_eval=True)
    swap_client(store, counting)
    ack = create_domain_ack(run, "logs", "start_trace")
    assert store.add_ack(run, ack) is AckOutcome.RECORDED
    assert counting.sent == ["EVALSHA", "EVAL"]
    assert [a.id for a in store.get_acks(run)] == [ack.id]


def test_other_errors_are_not_retried(store: AuditStore, raw_client: Any) -> None:
    run = _declared(store)
    store.add_ack(run, create_domain_ack(run, "x", "y"))  # add_acks is loaded
    counting = CountingClient(raw_client)
    swap_client(store, counting)
    call = store.core.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
    bad = call._replace(args=(0, *call.args[1:]))  # ttl 0: the script refuses it
    with pytest.raises(Exception, match="RAC_BADARG"):
        store.execute(bad)
    assert counting.sent == ["EVALSHA"]
    status = {e.key(): e.status for e in store.get_expectations(run)}
    assert status[("logs", "start_trace")] is AuditStatus.PENDING
