"""Every route of the dashboard, as HTTP, over the embedded store, Redis and Redis Cluster.

The data is written by an ordinary (writable) store; the dashboard reads it through
its own read-only async store on the same server.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio
import redis.asyncio.cluster

from rac_store import AsyncAuditStore, AuditExpectation, AuditStore, InvalidInputError
from rac_store.embedded import create_embedded_async_client, create_embedded_client
from rac_store.web.app import create_app

from .support.web import ack, in_process, mark_missing, pending_run

SITES = ("embedded", "redis", pytest.param("cluster", marks=pytest.mark.cluster))


@dataclass
class Site:
    """A dashboard (TestClient) and a writable store on the same server."""

    writer: AuditStore
    http: Any


@pytest.fixture(params=SITES)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    if request.param == "embedded":
        server = request.getfixturevalue("fake_server")
        writer = AuditStore(create_embedded_client(server), metrics=False)
        reader: Any = create_embedded_async_client(server)
    elif request.param == "redis":
        port = request.getfixturevalue("redis_server").port
        writer = AuditStore(request.getfixturevalue("redis_client"), metrics=False)
        reader = redis.asyncio.Redis(host="127.0.0.1", port=port)
    else:
        cluster = request.getfixturevalue("cluster")
        writer = AuditStore(cluster.client(), metrics=False)
        reader = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=cluster.ports[0])
    with in_process(reader) as http:
        yield Site(writer, http)


def _json(site: Site, path: str, status: int = 200, **params: Any) -> Any:
    response = site.http.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


# -- overview -------------------------------------------------------------------------
def test_overview_counts_findings_and_lists_overdue_and_soon_runs(site: Site) -> None:
    overdue = [pending_run(site.writer, deadline_ms=0) for _ in range(3)]
    soon = [pending_run(site.writer, deadline_ms=60_000) for _ in range(2)]
    later = pending_run(site.writer, deadline_ms=3_600_000)  # pending, not soon
    marked = pending_run(site.writer)
    mark_missing(site.writer, marked)  # one MISSING event
    time.sleep(0.01)  # the overdue runs' due time (now + 0 ms) is in the past

    page = _json(site, "/api/overview")
    assert page["pending_total"] == 6  # the marked run left the index
    assert page["overdue"]["total"] == 3
    assert {row["run_id"] for row in page["overdue"]["rows"]} == set(overdue)
    assert page["soon"]["total"] == 2
    assert {row["run_id"] for row in page["soon"]["rows"]} == set(soon)
    assert later not in str(page)
    assert page["counts"]["MISSING"] == 1 and page["counts"]["STALE"] == 0
    assert page["counts"]["INCOMPLETE"] == 1  # the mark settled the run: its verdict
    assert [(f["type"], f["run_id"]) for f in page["latest"]] == [
        ("INCOMPLETE", marked),  # newest first
        ("MISSING", marked),
    ]

    html = site.http.get("/")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    for run in (*overdue, *soon, marked):
        assert f'href="/runs/{run}"' in html.text
    assert "Past due" in html.text and "Due soon" in html.text


def test_overview_pages_through_every_overdue_run_once_in_due_order(site: Site) -> None:
    runs = []
    for i in range(11):
        run = uuid.uuid4()
        # two runs share each due time: ties are ordered by run id
        site.writer.add_expectations(run, [AuditExpectation(run, "d", "a", i // 2)])
        runs.append(str(run))
    time.sleep(0.02)  # every due time (now + 0..5 ms) is in the past
    seen: list[tuple[int, str]] = []
    token = None
    for _ in range(10):
        page = _json(site, "/api/overview", limit="3", **({"overdue": token} if token else {}))
        seen += [(row["due_ms"], row["run_id"]) for row in page["overdue"]["rows"]]
        token = page["overdue"]["next"]
        assert len(page["overdue"]["rows"]) == (3 if token else 11 % 3)
        if token is None:
            break
    assert sorted(r for _, r in seen) == sorted(runs)
    assert seen == sorted(seen)
    html = site.http.get("/", params={"limit": "3"}).text
    assert 'rel="next" href="?overdue=' in html


# -- one run --------------------------------------------------------------------------
def test_run_page_shows_expectations_acks_drift_and_both_verdicts(site: Site) -> None:
    run = pending_run(site.writer, deadline_ms=600_000, liveness=True)
    run_uuid = uuid.UUID(run)
    site.writer.add_expectations(
        run_uuid,
        [
            AuditExpectation(run_uuid, "incidents", "create_incident", 600_000),
            AuditExpectation(run_uuid, "policies", "evaluate_policy", 600_000),
        ],
    )
    ack(site.writer, run, "incidents", "create_incident", result_id="INC-7")
    ack(site.writer, run, "policies", "evaluate_policy", error="engine down")
    ack(site.writer, run, "policies", "evaluate_policy", rolled_back=True, rollback_reason="undo")
    ack(site.writer, run, "ghost", "unplanned")  # drift

    page = _json(site, f"/api/runs/{run}")
    assert page["run_id"] == run
    status = {(e["domain"], e["action"]): e for e in page["expectations"]}
    assert status["incidents", "create_incident"]["status"] == "ACKED"
    assert status["incidents", "create_incident"]["acked_at"] is not None
    assert status["policies", "evaluate_policy"]["status"] == "FAILED"
    assert status["logs", "start_trace"]["status"] == "PENDING"
    assert status["logs", "start_trace"]["due_ms"] > page["now_ms"]
    assert status["orchestrator", "finalize_run"]["liveness"] is True
    assert [(a["position"], a["action"], a["result_id"], a["error"], a["rollback_reason"])
            for a in page["acks"]] == [
        (1, "create_incident", "INC-7", None, None),
        (2, "evaluate_policy", None, "engine down", None),
        (3, "evaluate_policy", None, None, "undo"),
        (4, "unplanned", None, None, None),
    ]  # fmt: skip
    assert page["drift"] == [["ghost", "unplanned"]]
    assert page["verdict"]["status"] == "INCOMPLETE"  # failed and drift
    assert page["verdict"]["pending_actions"] == [
        ["logs", "start_trace"],
        ["orchestrator", "finalize_run"],
    ]
    final = page["final_verdict"]
    assert final["status"] == "STALE" and final["stale_run"] is True
    assert ["orchestrator", "finalize_run"] in final["missing_actions"]
    assert final["pending_actions"] == []

    html = site.http.get(f"/runs/{run}").text
    for text in ("INC-7", "engine down", "undo", "ghost/unplanned", "If the run ended now"):
        assert text in html
    assert 'class="verdict v-STALE"' in html and 'class="verdict v-INCOMPLETE"' in html


def test_acks_are_paginated_in_arrival_order(site: Site) -> None:
    run = pending_run(site.writer)
    run_uuid = uuid.UUID(run)
    from rac_store import create_domain_ack

    sent = [create_domain_ack(run_uuid, "logs", f"step_{i}", result_id=f"R{i}") for i in range(60)]
    site.writer.add_acks(run, sent)
    results: list[str] = []
    for number in range(4):
        page = _json(site, f"/api/runs/{run}", acks_page=str(number), limit="25")
        assert page["acks_page"]["total"] == 60 and page["acks_page"]["pages"] == 3
        assert page["acks_page"]["has_next"] is (number < 2)
        results += [a["result_id"] for a in page["acks"]]
        assert [a["position"] for a in page["acks"]] == list(
            range(25 * number + 1, min(60, 25 * number + 25) + 1)
        )
    assert results == [f"R{i}" for i in range(60)]
    html = site.http.get(f"/runs/{run}", params={"acks_page": "1", "limit": "25"}).text
    assert "page 2 of 3" in html and "?acks_page=2&amp;limit=25" in html


def test_unknown_runs_are_404_and_malformed_ids_400(site: Site) -> None:
    unknown = str(uuid.uuid4())
    for path in (f"/api/runs/{unknown}", f"/runs/{unknown}"):
        response = site.http.get(path, headers={"accept": "text/html"})
        assert response.status_code == 404
        assert unknown in response.text and "not in the store" in response.text
    assert _json(site, "/api/runs/not-a-run", 400)["error"].startswith("run_id must be a UUID")
    assert site.http.get("/runs/not-a-run").status_code == 400
    accept_json = site.http.get(f"/runs/{unknown}", headers={"accept": "application/json"})
    assert accept_json.status_code == 404 and accept_json.json()["status"] == 404
    run = pending_run(site.writer)
    for params in ({"limit": "0"}, {"limit": "201"}, {"acks_page": "-1"}, {"exp_page": "x"}):
        assert site.http.get(f"/api/runs/{run}", params=params).status_code == 400, params


# -- findings -------------------------------------------------------------------------
def test_findings_filter_by_type_and_page_newest_first(site: Site) -> None:
    runs = [pending_run(site.writer) for _ in range(7)]
    for run in runs:
        mark_missing(site.writer, run)
    done = pending_run(site.writer)
    ack(site.writer, done, "logs", "start_trace")  # COMPLETE
    everything = _json(site, "/api/findings", limit="200")
    kinds = sorted(f["type"] for f in everything["findings"])
    # each mark settled its run: the mark, then the run's INCOMPLETE verdict
    assert kinds == ["COMPLETE", *["INCOMPLETE"] * 7, *["MISSING"] * 7]
    orders = [_order(f) for f in everything["findings"]]
    assert orders == sorted(orders, reverse=True)
    assert everything["next"] is None
    assert len(everything["live_since"].split(",")) == everything["shards"]

    seen: list[tuple[tuple[int, int, int], str]] = []
    token = None
    while True:
        params = {"type": "MISSING", "limit": "3", **({"before": token} if token else {})}
        page = _json(site, "/api/findings", **params)
        assert all(f["type"] == "MISSING" for f in page["findings"])
        assert (page["live_since"] is None) is (token is not None)
        seen += [(_order(f), f["run_id"]) for f in page["findings"]]
        token = page["next"]
        if token is None:
            break
    # newest first by (stream id, shard): events of one millisecond in two shards may
    # share a stream id, so arrival order across shards is only that precise
    assert [order for order, _ in seen] == sorted((order for order, _ in seen), reverse=True)
    assert sorted(run for _, run in seen) == sorted(runs)

    html = site.http.get("/findings", params=[("type", "COMPLETE")]).text
    assert done in html and runs[0] not in html
    assert 'value="COMPLETE" checked' in html
    assert 'id="feed"' in html and "data-since=" in html and 'src="/static/findings.js"' in html
    assert _json(site, "/api/findings", 400, type="BOGUS")["error"].startswith("type must be")
    assert site.http.get("/api/findings", params={"before": "nope"}).status_code == 400


def _order(finding: dict[str, Any]) -> tuple[int, int, int]:
    ms, seq = finding["stream_id"].split("-")
    return (int(ms), int(seq), finding["shard"])


# -- health, metrics, the rest --------------------------------------------------------
def test_healthz_metrics_static_and_headers(site: Site) -> None:
    pending_run(site.writer, deadline_ms=0)
    pending_run(site.writer)
    time.sleep(0.01)  # the first one's due time (now + 0 ms) is in the past
    health = _json(site, "/healthz")
    assert health["status"] == "ok" and health["read_only"] is True and health["now_ms"] > 0
    site.http.get("/")
    metrics = site.http.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    lines = metrics.text.splitlines()
    assert "rac_pending_runs 2.0" in lines and "rac_overdue_runs 1.0" in lines
    assert 'rac_web_requests_total{code="200",page="overview"} 1.0' in lines
    for asset, kind in (("style.css", "text/css"), ("findings.js", "javascript")):
        response = site.http.get(f"/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    page = site.http.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["server-timing"].startswith("app;dur=")
    assert site.http.get("/no/such/page").status_code == 404
    assert _json(site, "/api/no/such/page", 404)["status"] == 404


def test_only_get_and_head_exist(site: Site) -> None:
    run = pending_run(site.writer)
    before = site.writer.get_expectations(run)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/", f"/runs/{run}", "/findings", f"/api/runs/{run}"):
            assert site.http.request(method, path).status_code == 405, (method, path)
    assert site.http.head("/").status_code == 200
    assert site.writer.get_expectations(run) == before


def test_a_writable_store_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="read_only=True"):
        create_app(AsyncAuditStore(create_embedded_async_client()))
