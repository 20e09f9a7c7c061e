"""Findings positions in URLs (``before=``, ``since=``) that Redis would refuse are the
client's error (400), not a store outage (503): stream ids are two 64-bit numbers, and
nothing is older than ``0-0``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio

from rac_store import AuditStore

from .support.redis_server import RedisServer
from .support.web import in_process, mark_missing, pending_run

TOP = 2**64 - 1  # the largest part of a stream id Redis takes


@pytest.fixture
def site(redis_server: RedisServer, redis_client: Any) -> Iterator[tuple[str, Any]]:
    """A dashboard over the session's redis-server, with one run marked MISSING."""
    writer = AuditStore(redis_client, metrics=False)
    run = pending_run(writer)
    mark_missing(writer, run)
    with in_process(redis.asyncio.Redis(host="127.0.0.1", port=redis_server.port)) as http:
        yield run, http


@pytest.mark.parametrize(
    "before",
    [f"{TOP + 1}-0@0", f"1-{TOP + 1}@3", "99999999999999999999-0@15", "0-0@0", "0-0@1"],
)
def test_a_findings_mark_redis_would_refuse_is_a_bad_request(
    site: tuple[str, Any], before: str
) -> None:
    _, http = site
    response = http.get("/api/findings", params={"before": before})
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("not a findings position")


def test_the_largest_mark_is_taken_and_reads_every_finding(site: tuple[str, Any]) -> None:
    run, http = site
    response = http.get("/api/findings", params={"before": f"{TOP}-{TOP}@0"})
    assert response.status_code == 200, response.text
    findings = response.json()["findings"]
    assert {f["run_id"] for f in findings} == {run} and len(findings) == 2  # MISSING, verdict


@pytest.mark.parametrize("bad", [f"{TOP + 1}-0", f"0-{TOP + 1}"])
def test_live_positions_redis_would_refuse_are_a_bad_request(
    site: tuple[str, Any], bad: str
) -> None:
    _, http = site
    since = ",".join(["0"] * 15 + [bad])
    response = http.get("/api/findings/live", params={"since": since})
    assert response.status_code == 400, response.text
    assert "since must be one stream id per shard" in response.json()["error"]
