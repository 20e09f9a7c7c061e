"""Every write script, sent twice (as redis-py may after a timeout), ends in the same state."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from rac_store import AuditStatus, AuditStore, create_domain_ack, create_run_expectations
from rac_store.scripts import ScriptCall

from .conftest import SYNC_BACKENDS
from .support.proxy import swap_client
from .support.snapshot import snapshot

RUN = uuid.uuid4()


def _calls(store: AuditStore) -> dict[str, ScriptCall]:
    core = store.core
    return {
        "add_expectations": core.add_expectations(RUN, create_run_expectations(RUN)),
        "add_ack": core.add_ack(RUN, create_domain_ack(RUN, "incidents", "create_incident")),
        "add_ack drift": core.add_ack(RUN, create_domain_ack(RUN, "x", "y")),
        "add_acks": core.add_acks(
            RUN,
            [
                create_domain_ack(RUN, "policies", "evaluate_policy", error="x"),
                create_domain_ack(RUN, "logs", "start_trace"),
            ],
        ),
        "update_status": core.update_status(
            RUN, "orchestrator", "finalize_run", AuditStatus.MISSING
        ),
        "record_finding": core.record_finding(RUN, "STALE", [("missing", "1")]),
        "end_run": core.end_run(RUN),
        "clear_run": core.clear_run(RUN),
    }


@pytest.mark.parametrize(
    "name",
    [
        "add_expectations",
        "add_ack",
        "add_ack drift",
        "add_acks",
        "update_status",
        "record_finding",
        "end_run",
        "clear_run",
    ],
)
def test_resent_script_changes_nothing(store: AuditStore, raw_client: Any, name: str) -> None:
    calls = _calls(store)
    for earlier in list(calls)[: list(calls).index(name)]:
        store.execute(calls[earlier])  # reach the state in which this call matters
    store.execute(calls[name])
    once = snapshot(raw_client)
    store.execute(calls[name])
    assert snapshot(raw_client) == once


class DropFirstReply:
    """A client proxy whose first script call runs on the server but 'loses' its reply."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.dropped = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        reply = self._client.execute_command(*args, **options)
        if self.dropped == 0 and args[0] in ("EVALSHA", "EVAL"):
            self.dropped += 1
            import redis

            raise redis.ConnectionError("reply lost (simulated)")
        return reply


# The proxy is a sync client: this test is for the sync store (the asyncio store's
# counterpart is in tests/test_async_store.py).
@pytest.mark.parametrize("backend", SYNC_BACKENDS, indirect=True)
def test_retry_after_lost_reply_records_once(store: AuditStore, raw_client: Any) -> None:
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    proxy = DropFirstReply(raw_client)
    swap_client(store, proxy)
    ack = create_domain_ack(run, "incidents", "create_incident")
    store.add_ack(run, ack)  # the store re-sends after the simulated connection loss
    assert proxy.dropped == 1
    assert [a.id for a in store.get_acks(run)] == [ack.id]
