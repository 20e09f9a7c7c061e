"""``rac-store web`` as an operator runs it: a real uvicorn in a subprocess, over HTTP."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid

import httpx
import pytest
import redis

from rac_store import AuditStore
from rac_store.loopback import is_loopback

from .conftest import ACL_PASSWORD
from .support.faults import digest
from .support.redis_server import RedisServer
from .support.web import ROOT, mark_missing, pending_run, wait_for, web_process


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_loopback_is_the_default_and_anything_else_needs_allow_remote() -> None:
    assert all(map(is_loopback, ("127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]")))
    assert not any(map(is_loopback, ("0.0.0.0", "::", "10.1.2.3", "example.org")))
    refused = _python(
        "-m", "rac_store", "web", "--host", "0.0.0.0", "--redis-url", "redis://127.0.0.1:1/0"
    )
    assert refused.returncode == 2
    assert "refusing to serve on '0.0.0.0'" in refused.stderr and "--allow-remote" in refused.stderr


@pytest.mark.redis_only
def test_allow_remote_warns_and_a_prefix_without_store_is_an_error(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    done = _python(
        "-m", "rac_store", "web", "--host", "0.0.0.0", "--allow-remote",
        "--redis-url", redis_server.url, "--prefix", "nostore",
    )  # fmt: skip
    assert done.returncode == 3  # not found: as every command (rac_store.cli.common)
    assert "WARNING: serving on '0.0.0.0' with no login" in done.stderr
    assert "no store under prefix nostore at redis://127.0.0.1:" in done.stderr
    assert redis_client.dbsize() == 0


def test_without_the_web_extra_it_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['starlette'] = None\n"
        "from rac_store.cli import main\n"
        "sys.exit(main(['web']))"
    )
    done = _python("-c", code)
    assert done.returncode == 2
    assert "pip install 'rac-store[web]'" in done.stderr


def test_the_package_and_the_other_commands_never_import_the_web_stack() -> None:
    code = (
        "import sys, rac_store, rac_store.cli, rac_store.web, rac_store.web.views\n"
        "from rac_store.cli import build_parser; build_parser()\n"
        "print(sorted(m for m in ('starlette', 'jinja2', 'uvicorn') if m in sys.modules))"
    )
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_with_no_url_it_serves_the_demo_data() -> None:
    with web_process(env={"RAC_REDIS_URL": ""}) as web:
        overview = web.get("/api/overview").json()
        assert overview["counts"]["INCOMPLETE"] == 3  # the demo's three broken runs
        assert overview["overdue"]["total"] >= 2 and overview["soon"]["total"] >= 5
        assert web.get("/healthz").json()["mode"] == "embedded"
        run = overview["latest"][0]["run_id"]
        assert web.get(f"/runs/{run}").status_code == 200
        web.process.terminate()  # what a service manager sends
        assert web.process.wait(15) == 0  # a clean stop, not death by the signal
    assert "embedded demo" in web.output()


@pytest.mark.redis_only
def test_served_as_the_inspector_it_reads_follows_live_and_writes_nothing(
    redis_server: RedisServer, redis_client: redis.Redis, acl_users: dict[str, str]
) -> None:
    writer = AuditStore(redis_client, metrics=False)
    runs = [pending_run(writer, deadline_ms=0) for _ in range(3)]
    mark_missing(writer, runs[0])
    user = acl_users["inspector"]
    url = f"redis://{user}:{ACL_PASSWORD}@127.0.0.1:{redis_server.port}/0"
    before = digest(redis_client)
    with web_process("--redis-url", url) as web:
        assert web.get("/api/overview").json()["overdue"]["total"] == 2
        assert web.get(f"/runs/{runs[1]}").status_code == 200
        assert web.get(f"/runs/{uuid.uuid4()}").status_code == 404
        page = web.get("/api/findings").json()
        # the mark, then (newest first) the verdict of the run it settled
        assert [(f["type"], f["run_id"]) for f in page["findings"]] == [
            ("INCOMPLETE", runs[0]),
            ("MISSING", runs[0]),
        ]
        assert "rac_overdue_runs 2.0" in web.get("/metrics").text
        assert digest(redis_client) == before  # browsing wrote nothing

        received: list[str] = []

        def listen() -> None:
            params = {"since": page["live_since"], "type": "MISSING"}
            with httpx.stream("GET", web.base + "/findings/live", params=params, timeout=20) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                for line in r.iter_lines():
                    received.append(line)
                    if line.startswith("data:"):
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        wait_for(lambda: received, what="the live feed to connect")
        mark_missing(writer, runs[2])  # written after the page was read: still delivered
        listener.join(20)
        assert any(runs[2] in line for line in received if line.startswith("data:"))
    output = web.output()
    assert ACL_PASSWORD not in output
    assert f"redis://127.0.0.1:{redis_server.port}/0" in output  # the URL, redacted
