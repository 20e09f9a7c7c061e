"""The dashboard is read-only by construction and escapes everything users wrote.

Browsing every page as the least-privilege inspector leaves the server's data
byte-identical (DEBUG DIGEST; on the embedded server, every key and value), and
hostile domains, actions, error texts, rollback reasons, result ids and metadata
come out as text in the HTML and exactly, with no markup character, in the JSON.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio

from rac_store import AsyncAuditReconciler, AsyncAuditStore, AuditExpectation, AuditStore
from rac_store.embedded import create_embedded_async_client, create_embedded_client
from rac_store.models import FindingType
from rac_store.web.live import finding_events

from .conftest import ACL_PASSWORD
from .support.faults import digest
from .support.redis_server import RedisServer
from .support.web import ack, in_process, mark_missing, pending_run

SCRIPT = '<script>alert("x")</script>'
IMG = '"><img src=x onerror=alert(1)>'
TEMPLATE = "{{ 7*7 }}{% if 1 %}"
RTL = "invoice\u202egnp.exe"
LONG = "long " + "<i>" * 6000 + " end"
"""A very long text (18 KB) that is markup all the way."""


def _hostile_run(writer: AuditStore) -> str:
    """A run whose every user-supplied text is hostile."""
    run = uuid.uuid4()
    exps = [
        AuditExpectation(run, SCRIPT, IMG, 600_000, metadata={"<b>k</b>": SCRIPT, "rtl": RTL}),
        AuditExpectation(run, TEMPLATE, "act", 600_000),
        AuditExpectation(run, "logs", IMG, 600_000),
    ]
    writer.add_expectations(run, exps)
    text = str(run)
    ack(writer, text, SCRIPT, IMG, result_id=IMG, error=LONG, metadata={IMG: TEMPLATE})
    ack(writer, text, TEMPLATE, "act", rolled_back=True, rollback_reason=RTL + SCRIPT)
    ack(writer, text, IMG, SCRIPT, result_id=TEMPLATE)  # drift
    mark_missing(writer, text, "logs", IMG)  # a MISSING finding naming a hostile action
    return text


@pytest.fixture(params=("embedded", "redis-inspector"))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[AuditStore, Any, Any]]:
    """(writable store, admin client for digests, the dashboard's async client)."""
    if request.param == "embedded":
        fake = request.getfixturevalue("fake_server")
        admin = create_embedded_client(fake)
        yield AuditStore(admin, metrics=False), admin, create_embedded_async_client(fake)
        return
    single: RedisServer = request.getfixturevalue("redis_server")
    admin = request.getfixturevalue("redis_client")
    inspector = request.getfixturevalue("acl_users")["inspector"]
    reader = redis.asyncio.Redis(
        host="127.0.0.1", port=single.port, username=inspector, password=ACL_PASSWORD
    )
    yield AuditStore(admin, metrics=False), admin, reader


def _links(html: str, pattern: str) -> list[str]:
    return [m.replace("&amp;", "&") for m in re.findall(pattern, html)]


def test_browsing_every_page_writes_nothing(server: tuple[AuditStore, Any, Any]) -> None:
    writer, admin, reader = server
    runs = [pending_run(writer, deadline_ms=0) for _ in range(4)]
    runs += [pending_run(writer, deadline_ms=120_000, liveness=True) for _ in range(3)]
    for run in runs[:2]:
        mark_missing(writer, run)
    ack(writer, runs[4], "logs", "start_trace", error="boom")
    busy = runs[5]
    for i in range(30):
        ack(writer, busy, "logs", f"retry_{i}")
    hostile = _hostile_run(writer)
    before = digest(admin)
    with in_process(reader) as http:
        visited = 0

        def get(path: str, status: int = 200, **options: Any) -> str:
            nonlocal visited
            response = http.get(path, **options)
            assert response.status_code == status, (path, response.text[:300])
            visited += 1
            return str(response.text)

        overview = get("/", params={"limit": "2"})
        for link in _links(overview, r'href="(\?(?:overdue|soon)=[^"]+)"'):
            get("/" + link)
        for run in [*runs, hostile]:
            page = get(f"/runs/{run}", params={"limit": "10"})
            for link in _links(page, r'href="(\?(?:acks|exp)_page=[^"]+)"'):
                get(f"/runs/{run}{link}")
            get(f"/api/runs/{run}")
        findings = get("/findings", params={"limit": "2"})
        for link in _links(findings, r'href="(\?[^"]*before=[^"]+)"'):
            get("/findings" + link)
        for kind in FindingType:
            get("/api/findings", params={"type": kind.value})
        for path in ("/api/overview", "/healthz", "/metrics", "/static/style.css"):
            get(path)
        get(f"/runs/{uuid.uuid4()}", 404)
        get("/runs/not-a-uuid", 400)
        get("/findings/live", 400, params={"since": "1,2"})
        assert http.post("/").status_code == 405
        assert visited > 25
    assert digest(admin) == before


def test_hostile_values_are_text_in_html(server: tuple[AuditStore, Any, Any]) -> None:
    writer, _, reader = server
    run = _hostile_run(writer)
    with in_process(reader) as http:
        pages = {
            "run": http.get(f"/runs/{run}").text,
            "findings": http.get("/findings").text,
            "overview": http.get("/").text,
        }
    for name, html in pages.items():
        assert "<script>alert" not in html, name
        assert "<img src=x" not in html, name
        assert "<b>k" not in html and "<i>" not in html, name
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, name  # shown, as text
    page = pages["run"]
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "{{ 7*7 }}{% if 1 %}" in page  # a template in the data is not a template
    assert RTL in page
    assert "long " + "&lt;i&gt;" * 6000 + " end" in page  # the whole long error, escaped
    assert "&lt;b&gt;k&lt;/b&gt;" in page  # metadata keys too
    # only the page's own script, from the page's own origin
    assert re.findall(r"<script[^>]*>", pages["findings"]) == [
        '<script src="/static/findings.js" defer>'
    ]


def test_hostile_values_are_exact_in_json(server: tuple[AuditStore, Any, Any]) -> None:
    writer, _, reader = server
    run = _hostile_run(writer)
    with in_process(reader) as http:
        bodies = {
            path: http.get(path) for path in (f"/api/runs/{run}", "/api/findings", "/api/overview")
        }
    for path, response in bodies.items():
        assert response.headers["content-type"] == "application/json", path
        assert not set("<>&") & set(response.text), path  # escaped as \u003c, \u003e, \u0026
    page = bodies[f"/api/runs/{run}"].json()
    keys = {(e["domain"], e["action"]) for e in page["expectations"]}
    assert keys == {(SCRIPT, IMG), (TEMPLATE, "act"), ("logs", IMG)}
    by_key = {(e["domain"], e["action"]): e for e in page["expectations"]}
    assert by_key[SCRIPT, IMG]["metadata"] == {"<b>k</b>": SCRIPT, "rtl": RTL}
    first, second, third = page["acks"]
    assert (first["result_id"], first["error"], first["metadata"]) == (IMG, LONG, {IMG: TEMPLATE})
    assert second["rollback_reason"] == RTL + SCRIPT
    assert third["result_id"] == TEMPLATE
    assert page["drift"] == [[IMG, SCRIPT]]
    findings = bodies["/api/findings"].json()["findings"]
    missing = next(f for f in findings if f["type"] == "MISSING")
    assert (missing["domain"], missing["action"]) == ("logs", IMG)


def test_error_messages_are_escaped_too(server: tuple[AuditStore, Any, Any]) -> None:
    _, _, reader = server
    with in_process(reader) as http:
        page = http.get("/runs/%3Cscript%3Ealert(1)%3Cimg%20src=x%20onerror=alert(1)%3E")
        assert page.status_code == 400
        assert "<script>" not in page.text and "<img" not in page.text
        assert "&lt;script&gt;alert(1)&lt;img src=x onerror=alert(1)&gt;" in page.text
        api = http.get("/api/findings", params={"type": IMG})
        assert api.status_code == 400 and "<" not in api.text and IMG in api.json()["error"]


def test_the_live_feed_sends_new_findings_as_escaped_json(fake_server: Any) -> None:
    """finding_events over the embedded store: a connect comment, then the new events
    of the wanted types only, each one line of JSON without markup characters."""
    writer = AuditStore(create_embedded_client(fake_server), metrics=False)
    kept, skipped = pending_run(writer), pending_run(writer)

    async def read() -> list[str]:
        store = AsyncAuditStore(
            create_embedded_async_client(fake_server), read_only=True, metrics=False
        )
        events = finding_events(
            AsyncAuditReconciler(store, metrics=False),
            "$",
            {FindingType.MISSING},
            block_ms=100,
            keepalive_s=0.3,
        )
        chunks = [await events.__anext__()]
        await asyncio.sleep(0.3)  # the reader has taken its place at the end of the streams
        ack(writer, skipped, "logs", "start_trace")  # COMPLETE: not a wanted type
        mark_missing(writer, kept, "logs", "start_trace")
        writer.update_expectation_status(skipped, "logs", "start_trace", "ACKED")
        while not any(chunk.startswith("id:") for chunk in chunks):
            chunks.append(await asyncio.wait_for(events.__anext__(), 5))
        chunks.append(await asyncio.wait_for(events.__anext__(), 5))  # a keep-alive next
        await events.aclose()  # type: ignore[attr-defined]
        await store.aclose()
        return chunks

    chunks = asyncio.run(read())
    assert chunks[0].startswith("retry: ") and ": connected" in chunks[0]
    found = [c for c in chunks if c.startswith("id:")]
    assert len(found) == 1
    lines = found[0].splitlines()
    assert lines[1] == "event: finding"
    event = json.loads(lines[2].removeprefix("data: "))
    assert (event["type"], event["run_id"]) == ("MISSING", kept)
    assert lines[0] == f"id: {event['stream_id']}@{event['shard']}"
    assert chunks[-1] == ": keepalive\n\n"
