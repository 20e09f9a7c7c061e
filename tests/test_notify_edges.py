"""``rac-store notify`` at its edges: option errors, losses reported (an unknown number too),
the metrics port, SIGTERM between tries, a store that refuses the consumer, no usable URL.

The session's redis-server; a webhook process (tests/support/webhook.py). A command that
only parses or fails fast runs in-process (``rac_store.cli.main``); one that runs until a
signal, or serves metrics, runs as its own process and is stopped by SIGTERM, which it
handles (it exits normally, so it is measured too).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rac_store import AuditReconciler, AuditStore
from rac_store.cli import main
from rac_store.findings_groups import TRIMMED_UNREAD

from .conftest import ACL_PASSWORD
from .support.findings_events import add_event
from .support.redis_server import RedisServer, free_port
from .support.webhook import Webhook

pytestmark = pytest.mark.redis_only

RAC_STORE = str(Path(sys.executable).parent / "rac-store")
FAST = ["--backoff", "0.01", "--max-backoff", "0.05", "--post-timeout", "5"]


def make_store(redis_client: Any, **options: Any) -> AuditStore:
    return AuditStore(redis_client, metrics=False, **options)


def produce(store: AuditStore, n: int, maxlen: int | None = None) -> list[str]:
    keys = store.core.keys
    bound = maxlen or store.core.findings_maxlen
    return [add_event(store.client, keys, bound, missing="1", n=str(i))[2] for i in range(n)]


def notify_args(hook: Webhook, server: RedisServer, *options: str) -> list[str]:
    return ["notify", "--webhook", hook.url, "--redis-url", server.url, *FAST, *options]


def pending(redis_client: Any, store: AuditStore, group: str = "rac-notify") -> int:
    """Events delivered to the group and not acked (0 when the group does not exist)."""
    return sum(
        int(info["pending"])
        for key in store.core.keys.all_findings()
        if redis_client.exists(key)
        for info in redis_client.xinfo_groups(key)
        if info["name"].decode() == group
    )


def dead_letters(redis_client: Any, store: AuditStore) -> int:
    keys = [store.core.keys.dead_letters(s) for s in range(store.core.keys.shards)]
    return sum(redis_client.xlen(key) for key in keys)


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return value


# -- options --------------------------------------------------------------------------
def test_a_template_from_a_file_is_the_body(
    redis_client: Any, redis_server: RedisServer, webhook: Any, tmp_path: Path
) -> None:
    store = make_store(redis_client)
    (run,) = produce(store, 1)
    template = tmp_path / "slack.json"
    template.write_text('{"text": "{type} {run_id}", "shard": "{shard}"}', encoding="utf-8")
    hook = webhook()
    assert main(notify_args(hook, redis_server, "--once", "--json-template", f"@{template}")) == 0
    assert hook.accepted() == [
        {"text": f"INCOMPLETE {run}", "shard": store.core.keys.shard_of(run)}
    ]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--json-template", "@{tmp}/nowhere.json", "cannot read {tmp}/nowhere.json: No such file"),
        ("--json-template", "@{tmp}", "cannot read {tmp}: Is a directory"),
        ("--json-template", "[1,", "the template is not JSON"),
        ("--header", "X Token: 1", "must be 'Name: value'"),
        ("--header", ": 1", "must be 'Name: value'"),
        ("--header", "X-Token", "must be 'Name: value'"),
    ],
)
def test_a_bad_template_or_header_is_a_usage_error(
    option: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["notify", "--webhook", "http://127.0.0.1:9/", "--once", option]
    with pytest.raises(SystemExit) as stopped:
        main([*argv, value.format(tmp=tmp_path)])
    assert stopped.value.code == 2
    assert f"argument {option}: {message.format(tmp=tmp_path)}" in capsys.readouterr().err


# -- losses ---------------------------------------------------------------------------
def fall_behind(redis_client: Any, events: int, unknown: bool) -> AuditStore:
    """The group rac-notify of a 1-shard store falls behind the stream's bound (10)."""
    store = make_store(redis_client, shards=1)
    assert AuditReconciler(store, metrics=False).consumer("rac-notify", "early").read(1) == []
    produce(store, events, maxlen=10)
    if unknown:  # a deleted entry the group has not read: Redis cannot tell the group's lag
        key = store.core.keys.findings(0)
        redis_client.xdel(key, redis_client.xrevrange(key, count=1)[0][0])
    return store


def test_a_loss_is_reported_once_and_counted(
    redis_client: Any, redis_server: RedisServer, webhook: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = fall_behind(redis_client, 300, unknown=False)
    held = redis_client.xlen(store.core.keys.findings(0))
    hook = webhook()
    assert main(notify_args(hook, redis_server, "--once", "--json")) == 0
    out, err = capsys.readouterr()
    *outcomes, done = [json.loads(line) for line in out.splitlines()]
    gaps = [o["event"] for o in outcomes if o["event"]["type"] == "GAP"]
    assert len(gaps) == 1 and gaps[0]["reason"] == TRIMMED_UNREAD
    lost = int(gaps[0]["lost"])
    assert lost == 300 - held  # every event is delivered or counted lost
    assert done == {"stopped": True, "delivered": held + 1, "dead_lettered": 0, "lost": lost}
    assert err.splitlines() == [
        f"rac-store notify: group rac-notify lost {lost} event(s) of shard 0 ({TRIMMED_UNREAD})"
    ]
    assert [b["type"] for b in hook.accepted()].count("GAP") == 1


def test_a_loss_of_an_unknown_size_is_reported_without_a_crash(
    redis_client: Any, redis_server: RedisServer, webhook: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = fall_behind(redis_client, 300, unknown=True)
    held = redis_client.xlen(store.core.keys.findings(0))
    hook = webhook()
    assert main(notify_args(hook, redis_server, "--once")) == 0  # it crashed here (int("unknown"))
    out, err = capsys.readouterr()
    assert err.splitlines() == [  # once: the group is moved past the loss
        f"rac-store notify: group rac-notify lost unknown event(s) of shard 0 ({TRIMMED_UNREAD})"
    ]
    gaps = [b for b in hook.accepted() if b["type"] == "GAP"]
    assert [g["lost"] for g in gaps] == ["unknown"]
    assert len(hook.accepted()) - len(gaps) == held  # every event held is delivered
    summary = f"notify: {held + len(gaps)} delivered, 0 dead-lettered, 0 lost (group rac-notify)"
    assert out.splitlines()[-1] == summary
    assert pending(redis_client, store) == 0


# -- long-running: metrics, signals, outages ------------------------------------------
def start_notify(hook: Webhook, server: RedisServer, *options: str, url: str = "") -> Any:
    command = [RAC_STORE, *notify_args(hook, server, *options)]
    if url:
        command[command.index(server.url)] = url
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(process: Any) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_metrics_are_served_while_it_runs(
    redis_client: Any, redis_server: RedisServer, webhook: Any
) -> None:
    store = make_store(redis_client)
    produce(store, 5)
    hook = webhook("--plan", "500")  # the first POST fails, then every one is accepted
    port = free_port()
    process = start_notify(
        hook, redis_server, "--group", "pager", "--metrics-port", str(port),
        "--metrics-host", "127.0.0.1", "--block-ms", "50",
    )  # fmt: skip

    def scraped() -> dict[str, float] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
                text = page.read().decode()
        except OSError:
            return None  # not serving yet
        values = {
            line.split("{")[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("rac_") and '{group="pager"}' in line
        }
        # every event delivered, and the backlog measured after it
        delivered = values.get("rac_notify_delivered_total") == 5
        return values if delivered and values.get("rac_findings_pending") == 0 else None

    try:
        values = wait_for(scraped)
    finally:
        code, out, err = stop(process)
    assert code == 0, err
    assert values["rac_notify_attempt_failures_total"] == 1
    assert values["rac_notify_dead_letters_total"] == 0
    assert values["rac_findings_delivery_lag"] == 0
    assert "notify: 5 delivered, 0 dead-lettered, 0 lost (group pager)" in out
    assert len(hook.accepted()) == 5


def test_a_metrics_port_in_use_is_a_usage_error(
    redis_client: Any, redis_server: RedisServer, webhook: Any
) -> None:
    store = make_store(redis_client)
    produce(store, 2)
    hook = webhook()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [RAC_STORE, *notify_args(hook, redis_server, "--once", "--metrics-port", str(port),
             "--metrics-host", "127.0.0.1")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 2
    assert f"cannot export metrics on port {port}" in done.stderr
    assert "Traceback" not in done.stderr
    assert hook.requests() == [] and pending(redis_client, store) == 0


def test_sigterm_between_tries_leaves_the_event_pending(
    redis_client: Any, redis_server: RedisServer, webhook: Any
) -> None:
    store = make_store(redis_client)
    (run,) = produce(store, 1)
    hook = webhook("--plan", "500")
    # A long pause before the second try: SIGTERM comes during it (or just before it).
    process = start_notify(hook, redis_server, "--once", "--backoff", "60", "--max-backoff", "60")
    try:
        wait_for(hook.requests)
    finally:
        code, out, err = stop(process)
    assert code == 0, err
    assert out == "notify: 0 delivered, 0 dead-lettered, 0 lost (group rac-notify)\n"
    assert [r["body"]["run_id"] for r in hook.requests()] == [run]  # one try, no second
    assert pending(redis_client, store) == 1  # reclaimable by the next consumer
    assert dead_letters(redis_client, store) == 0


def worker_url(server: RedisServer, users: dict[str, str]) -> str:
    return f"redis://{users['worker']}:{ACL_PASSWORD}@127.0.0.1:{server.port}/0"


def test_a_refusing_store_is_reported_and_retried_until_stopped(
    redis_client: Any, redis_server: RedisServer, webhook: Any, acl_users: dict[str, str]
) -> None:
    """The worker user may open the store but not consume: each try fails, and is said."""
    store = make_store(redis_client)
    produce(store, 1)
    hook = webhook()
    process = start_notify(hook, redis_server, url=worker_url(redis_server, acl_users))
    try:
        first = process.stderr.readline()
    finally:
        code, out, err = stop(process)
    assert first.startswith("rac-store notify: StorePermissionError: "), first + err
    assert code == 2  # stopped while failing
    assert out == "notify: 0 delivered, 0 dead-lettered, 0 lost (group rac-notify)\n"
    assert ACL_PASSWORD not in first + err
    assert hook.requests() == []


def test_once_a_refusing_store_is_an_error_at_once(
    redis_client: Any,
    redis_server: RedisServer,
    webhook: Any,
    acl_users: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = make_store(redis_client)
    produce(store, 1)
    hook = webhook()
    argv = notify_args(hook, redis_server, "--once")
    argv[argv.index(redis_server.url)] = worker_url(redis_server, acl_users)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "StorePermissionError" in err and out == ""
    assert ACL_PASSWORD not in err
    assert hook.requests() == []


# -- no usable Redis URL --------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "no Redis: pass --redis-url or set RAC_REDIS_URL"),
        ("redis://:s3cret@127.0.0.1:notaport/0", "bad Redis URL"),
        ("http://:s3cret@127.0.0.1:6399/0", "bad Redis URL"),
    ],
)
def test_no_usable_redis_url_is_a_usage_error_without_the_password(
    url: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["notify", "--webhook", "http://127.0.0.1:9/", "--once"]
    assert main([*argv, *(["--redis-url", url] if url else [])]) == 2
    out, err = capsys.readouterr()
    assert message in err and out == ""
    assert "s3cret" not in err


@pytest.mark.parametrize(
    "url", ["ftp://s3cret@x/", "http:///s3cret", "https://", "http://x:s3cret@h:port/s3cret"]
)
def test_a_bad_webhook_url_is_a_usage_error_not_echoed(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["notify", "--webhook", url, "--once"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "argument --webhook: must be an http:// or https:// URL with a host" in err
    assert "s3cret" not in err
