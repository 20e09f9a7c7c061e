"""``rac-store notify``: real processes, the session's redis-server, and a local webhook process
that fails its first requests, refuses poisoned events, and can answer slowly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rac_store import AuditStore

from .support.findings_events import add_event
from .support.redis_server import RedisServer
from .support.webhook import Webhook

pytestmark = pytest.mark.redis_only

RAC_STORE = str(Path(sys.executable).parent / "rac-store")
FAST = ("--backoff", "0.01", "--max-backoff", "0.05", "--post-timeout", "1")


@pytest.fixture
def store(redis_client: Any) -> AuditStore:
    return AuditStore(redis_client, metrics=False)


def produce(store: AuditStore, n: int) -> list[tuple[int, str, str]]:
    """``n`` INCOMPLETE events of new runs: (shard, stream id, run id) of each."""
    core = store.core
    return [
        add_event(store.client, core.keys, core.findings_maxlen, missing="1", n=str(i))
        for i in range(n)
    ]


def notify(url: str, hook: Webhook, *options: str, timeout: float = 120) -> Any:
    return subprocess.run(
        [RAC_STORE, "notify", "--webhook", hook.url, "--redis-url", url, *FAST, *options],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def keys_of(bodies: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return sorted((b["shard"], b["stream_id"]) for b in bodies if b.get("stream_id"))


def test_once_delivers_every_event_through_failures_and_timeouts(
    store: AuditStore, redis_server: RedisServer, webhook: Any
) -> None:
    made = produce(store, 30)
    hook = webhook("--plan", "500,timeout,503,500", "--slow", "3")
    done = notify(redis_server.url, hook, "--once", "--json", "--group", "pager")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # stdout: only JSON
    assert lines[-1] == {"stopped": True, "delivered": 30, "dead_lettered": 0, "lost": 0}
    assert Counter(line["outcome"] for line in lines[:-1]) == {"delivered": 30}
    assert keys_of(hook.accepted()) == sorted((s, i) for s, i, _ in made)
    statuses = [r["status"] for r in hook.requests()]
    assert statuses[:4] == [500, 599, 503, 500] and len(statuses) == 34
    body = hook.accepted()[0]
    assert {"type", "run_id", "stream_id", "shard", "at_ms", "source", "group", "missing", "n"} <= (
        set(body)
    )
    assert (body["type"], body["source"], body["group"]) == ("INCOMPLETE", "reconcile", "pager")
    # Everything acked: a second run delivers nothing.
    again = notify(redis_server.url, hook, "--once", "--group", "pager")
    assert again.returncode == 0 and "0 delivered" in again.stdout
    assert len(hook.requests()) == 34


def test_an_event_that_keeps_failing_is_dead_lettered(
    store: AuditStore, redis_server: RedisServer, redis_client: Any, webhook: Any, tmp_path: Path
) -> None:
    made = produce(store, 10)
    poisoned = {made[2][2], made[7][2]}
    (tmp_path / "poison").write_text("\n".join(poisoned))
    hook = webhook("--poison", str(tmp_path / "poison"))
    done = notify(redis_server.url, hook, "--once", "--max-tries", "3")
    assert done.returncode == 0, done.stderr
    assert "8 delivered, 2 dead-lettered, 0 lost" in done.stdout
    dead_lines = [line for line in done.stderr.splitlines() if "dead-lettered" in line]
    assert len(dead_lines) == 2 and all("after 3 tries: HTTP 500" in x for x in dead_lines)
    tries = Counter(r["body"]["run_id"] for r in hook.requests())
    assert {run: tries[run] for run in poisoned} == dict.fromkeys(poisoned, 3)
    dead = {}
    for shard in range(16):
        for _, fields in redis_client.xrange(store.core.keys.dead_letters(shard)):
            values = {k.decode(): v.decode() for k, v in fields.items()}
            dead[values["run_id"]] = values
    assert set(dead) == poisoned
    assert all(
        v["dead_reason"].startswith("HTTP 500") and v["dead_tries"] == "3" for v in dead.values()
    )
    assert sorted(r["run_id"] for r in hook.accepted()) == sorted(
        run for _, _, run in made if run not in poisoned
    )


def test_slack_text_is_one_template_away(
    store: AuditStore, redis_server: RedisServer, webhook: Any
) -> None:
    ((_, _, run),) = produce(store, 1)
    hook = webhook()
    template = '{"text": "{type} run {run_id}: {summary}", "shard": "{shard}", "raw": "{{x}}"}'
    done = notify(redis_server.url, hook, "--once", "--json-template", template)
    assert done.returncode == 0, done.stderr
    (body,) = hook.accepted()
    assert set(body) == {"text", "shard", "raw"}
    assert body["text"].startswith(f"INCOMPLETE run {run}: ") and "missing=1" in body["text"]
    assert isinstance(body["shard"], int) and body["raw"] == "{x}"


def test_cli_hygiene(store: AuditStore, redis_server: RedisServer, webhook: Any) -> None:
    produce(store, 3)
    secret = "s3cr3t-token"
    hook = webhook()
    hook.stop()  # nobody listens any more: every POST is refused
    hook.url = f"http://user:{secret}@127.0.0.1:{hook.port}/hook/{secret}?key={secret}"
    done = notify(
        redis_server.url, hook, "--once", "--max-tries", "1", "--header", f"Authorization: {secret}"
    )
    assert done.returncode == 0
    assert "ConnectionRefusedError" in done.stderr
    assert secret not in done.stdout + done.stderr
    # bad options are usage errors, never tracebacks
    for bad in (["--max-tries", "0"], ["--json-template", "{"], ["--claim-idle-ms", "-1"]):
        wrong = notify(redis_server.url, hook, "--once", *bad)
        assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    bad_url = subprocess.run(
        [RAC_STORE, "notify", "--webhook", f"ftp://{secret}@x/"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad_url.returncode == 2 and secret not in bad_url.stderr
    no_redis = subprocess.run(
        [RAC_STORE, "notify", "--webhook", "http://127.0.0.1:9/", "--once", "--redis-url",
         f"redis://:{secret}@127.0.0.1:9/0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert no_redis.returncode == 2 and "Traceback" not in no_redis.stderr
    assert secret not in no_redis.stdout + no_redis.stderr


def test_a_closed_stdout_pipe_ends_quietly(
    store: AuditStore, redis_server: RedisServer, webhook: Any
) -> None:
    produce(store, 400)
    hook = webhook()
    process = subprocess.Popen(
        [RAC_STORE, "notify", "--webhook", hook.url, "--redis-url", redis_server.url, "--once",
         "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    json.loads(process.stdout.readline())
    process.stdout.close()  # like `| head -1`
    assert process.wait(120) == 0
    assert "Traceback" not in process.stderr.read()


def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.slow
def test_delivery_figures_after_kill_9(
    store: AuditStore, redis_server: RedisServer, webhook: Any, tmp_path: Path
) -> None:
    """Produced = delivered; duplicates only for what the killed consumer POSTed and never acked.

    Prints the figures of docs/integrations.md (``pytest tests/test_notify.py -s -k figures``).
    """
    made = produce(store, 2000)
    poisoned = {run for _, _, run in made[::250]}  # 8 events the webhook always refuses
    (tmp_path / "poison").write_text("\n".join(poisoned))
    hook = webhook("--plan", "500,500,timeout,503", "--slow", "1.5", "--delay", "0.002",
                   "--poison", str(tmp_path / "poison"))  # fmt: skip
    first = subprocess.Popen(
        [RAC_STORE, "notify", "--webhook", hook.url, "--redis-url", redis_server.url, *FAST,
         "--max-tries", "5", "--name", "first", "--batch", "200"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_for(lambda: len(hook.accepted()) >= 700)
    os.kill(first.pid, signal.SIGKILL)  # mid-batch: POSTed events whose ack never came
    first.wait(10)
    killed_at = len(hook.accepted())
    time.sleep(0.3)
    second = notify(
        redis_server.url, hook, "--once", "--max-tries", "5", "--name", "second",
        "--claim-idle-ms", "200",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    accepted = keys_of(hook.accepted())
    expected = sorted((s, i) for s, i, run in made if run not in poisoned)
    duplicates = len(accepted) - len(set(accepted))
    assert sorted(set(accepted)) == expected  # nothing lost
    assert duplicates <= 1  # acked right after each 2xx: at most the one in flight
    dead = sum(len(store.client.xrange(store.core.keys.dead_letters(s))) for s in range(16))
    assert dead == len(poisoned)
    print(
        f"\nproduced {len(made)}; delivered {len(set(accepted))} (first consumer before kill -9:"
        f" {killed_at}); duplicated after the crash {duplicates}; dead-lettered {dead};"
        f" POSTs {len(hook.requests())}"
    )
