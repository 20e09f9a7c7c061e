"""The dashboard when its store fails after start-up: ``/healthz`` and ``/metrics`` answer
503 with the error, and a live feed ends with an ``error`` event that carries it.

The failure is real: the dashboard runs as a least-privilege inspector on the session's
redis-server, and an admin takes the user's commands away once the app has started.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from rac_store import AsyncAuditStore, AuditStore
from rac_store.acl import inspector_rules
from rac_store.aio.reconciler import AsyncAuditReconciler
from rac_store.web.live import finding_events

from .support.redis_server import RedisServer
from .support.web import in_process, mark_missing, pending_run

PASSWORD = "web-inspector-password"


class Inspector:
    """A user with the inspector's rules, which :meth:`revoke` takes away."""

    def __init__(self, server: RedisServer, admin: redis.Redis) -> None:
        self.name = f"web-inspector-{uuid.uuid4().hex[:8]}"
        self.admin = admin
        self.port = server.port
        admin.execute_command(
            "ACL", "SETUSER", self.name, "reset", "on", f">{PASSWORD}", *inspector_rules("rac")
        )

    def client(self) -> redis.asyncio.Redis:
        return redis.asyncio.Redis(
            host="127.0.0.1", port=self.port, username=self.name, password=PASSWORD
        )

    def revoke(self) -> None:
        self.admin.execute_command("ACL", "SETUSER", self.name, "-@all")


@pytest.fixture
def inspector(redis_server: RedisServer, redis_client: redis.Redis) -> Iterator[Inspector]:
    user = Inspector(redis_server, redis_client)
    writer = AuditStore(redis_client, metrics=False)
    mark_missing(writer, pending_run(writer))  # one finding, so the store is not empty
    yield user
    redis_client.execute_command("ACL", "DELUSER", user.name)


def _events(body: str) -> list[tuple[str, Any]]:
    """The ``(event, data)`` pairs of an SSE body (comments skipped)."""
    pairs = []
    for block in body.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if "event" in fields:
            pairs.append((fields["event"], json.loads(fields["data"])))
    return pairs


def test_health_metrics_and_pages_answer_503_once_the_store_fails(inspector: Inspector) -> None:
    with in_process(inspector.client()) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        assert http.get("/metrics").status_code == 200
        inspector.revoke()

        health = http.get("/healthz")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unavailable"
        assert body["error"].startswith("StorePermissionError: web health:")
        assert "no permissions to run the 'time' command" in body["error"]

        metrics = http.get("/metrics", headers={"accept": "application/json"})
        assert metrics.status_code == 503
        assert metrics.json()["error"].startswith("web metrics:")
        assert "no permissions" in metrics.json()["error"]


def test_a_live_feed_ends_with_an_error_event_and_frees_its_place(inspector: Inspector) -> None:
    with in_process(inspector.client()) as http:
        dashboard = http.app.state.dashboard
        inspector.revoke()
        for _ in range(2):  # the first feed's place is free again for the second
            response = http.get("/api/findings/live")  # since the newest entries ("$")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.text.startswith("retry: 2000\n: connected\n\n")
            [(event, data)] = _events(response.text)  # the stream ends after it
            assert event == "error" and data["error"] == "StorePermissionError"
            assert "no permissions" in data["message"]
            assert dashboard.live_open == 0


def test_keepalives_go_on_until_the_store_fails(inspector: Inspector) -> None:
    """Nothing new for a while: keep-alive comments, and still the error once it comes."""

    async def read() -> list[str]:
        store = AsyncAuditStore(inspector.client(), read_only=True, metrics=False)
        await store.initialize()
        events = finding_events(
            AsyncAuditReconciler(store, metrics=False),
            "$",
            (),
            block_ms=200,
            keepalive_s=0.02,
        )
        chunks = [await events.__anext__()]
        chunks.append(await events.__anext__())  # nothing was written: a keep-alive
        inspector.revoke()  # the XREAD after the blocked one is refused
        async for chunk in events:
            chunks.append(chunk)
        await store.aclose()
        return chunks

    chunks = asyncio.run(read())
    assert chunks[0].startswith("retry: ") and chunks[1] == ": keepalive\n\n"
    assert set(chunks[1:-1]) == {": keepalive\n\n"}
    [(event, data)] = _events(chunks[-1])
    assert event == "error" and data["error"] == "StorePermissionError"
