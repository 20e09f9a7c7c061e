"""The dashboard's limits and life cycle: at most ``max_live`` live feeds at once (a freed
place is taken again), the store closed on shutdown unless ``close_store=False``, and no
``/metrics`` (the pages still served) where prometheus_client is not installed."""

from __future__ import annotations

import sys
import threading
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio
import uvicorn

from rac_store import AsyncAuditStore, AuditStore
from rac_store.embedded import EmbeddedServer, create_embedded_async_client, create_embedded_client
from rac_store.web.app import WebOptions, create_app

from .support.redis_server import RedisServer, free_port
from .support.web import in_process, pending_run, wait_for

with warnings.catch_warnings():  # Starlette >= 1 would rather have httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def _dashboard_app(server: EmbeddedServer, **options: Any) -> Any:
    store = AsyncAuditStore(create_embedded_async_client(server), read_only=True, metrics=False)
    return create_app(store, WebOptions(**options))


@pytest.fixture
def served(fake_server: EmbeddedServer) -> Iterator[tuple[str, Any]]:
    """The dashboard (max_live=1) under uvicorn in a thread: its base URL and its app."""
    writer = AuditStore(create_embedded_client(fake_server), metrics=False)
    pending_run(writer)
    app = _dashboard_app(fake_server, max_live=1, block_ms=100, keepalive_s=0.2)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web-under-test")
    thread.start()
    try:
        wait_for(lambda: server.started, what="uvicorn started")
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)
    assert not thread.is_alive()


def _refused(url: str) -> httpx.Response:
    """GET ``url``, read only when it is not a stream (a live feed would never end)."""
    with httpx.stream("GET", url, timeout=10) as response:
        assert response.status_code == 503, response.headers
        response.read()
    return response


def test_at_most_max_live_feeds_at_once_and_a_closed_one_frees_its_place(
    served: tuple[str, Any],
) -> None:
    base, app = served
    dashboard = app.state.dashboard
    with (
        httpx.Client(base_url=base, timeout=10) as first,
        first.stream("GET", "/api/findings/live") as feed,
    ):
        chunks = feed.iter_text()  # kept: dropping it would close the response
        assert feed.status_code == 200
        assert next(chunks).startswith("retry: 2000\n: connected")
        assert dashboard.live_open == 1
        refused = _refused(base + "/api/findings/live")
        assert refused.json() == {"error": "at most 1 live feeds at once", "status": 503}
        page = _refused(base + "/findings/live")  # the page twin: HTML
        assert page.headers["content-type"].startswith("text/html")
        assert "at most 1 live feeds at once" in page.text
        assert next(chunks) == ": keepalive\n\n"  # the open feed goes on
    wait_for(lambda: dashboard.live_open == 0, what="the closed feed's place freed")
    with (
        httpx.Client(base_url=base, timeout=10) as second,
        second.stream("GET", "/api/findings/live") as feed,
    ):
        assert feed.status_code == 200
        chunks = feed.iter_text()
        assert next(chunks).startswith("retry: 2000\n: connected")
        assert dashboard.live_open == 1


def _client_names(admin: redis.Redis) -> list[str]:
    return [str(client["name"]) for client in admin.client_list()]


@pytest.mark.parametrize("close_store", [True, False])
def test_the_store_is_closed_on_shutdown_unless_close_store_is_false(
    redis_server: RedisServer, redis_client: redis.Redis, close_store: bool
) -> None:
    pending_run(AuditStore(redis_client, metrics=False))
    name = f"web-{uuid.uuid4().hex[:8]}"
    reader = redis.asyncio.Redis(host="127.0.0.1", port=redis_server.port, client_name=name)
    store = AsyncAuditStore(reader, read_only=True, metrics=False)
    app = create_app(store, WebOptions(close_store=close_store))
    with TestClient(app) as http:
        assert http.get("/healthz").status_code == 200
        assert name in _client_names(redis_client)
    if close_store:
        wait_for(
            lambda: name not in _client_names(redis_client), what="the store's connection closed"
        )
    else:
        assert name in _client_names(redis_client)  # the caller's to close
        for client in redis_client.client_list():
            if client["name"] == name:
                redis_client.client_kill_filter(_id=client["id"])


def test_without_prometheus_client_metrics_is_404_and_pages_are_still_served(
    fake_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError
    pending_run(AuditStore(create_embedded_client(fake_server), metrics=False))
    with in_process(create_embedded_async_client(fake_server)) as http:
        assert not http.app.state.dashboard.metrics.available
        overview = http.get("/api/overview")
        assert overview.status_code == 200 and overview.json()["pending_total"] == 1
        assert http.get("/").status_code == 200
        metrics = http.get("/metrics", headers={"accept": "application/json"})
        assert metrics.status_code == 404
        assert metrics.json()["error"] == "metrics need: pip install 'rac-store[metrics]'"
