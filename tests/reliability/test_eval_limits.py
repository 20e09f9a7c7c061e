"""Issue 15, item 8: what a user granted EVAL can do to everyone, and how to prevent it.

A worker (the ``rac-store acl`` rules) may ``EVAL`` Lua of its own: an endless loop
makes the server answer ``BUSY`` to every other client once ``busy-reply-threshold``
has passed. The store treats BUSY as "not run": it re-sends for up to
``RetryPolicy.busy_timeout`` and then raises StoreUnavailableError; an admin's
``SCRIPT KILL`` ends such a (read-only) script. A worker granted ``evalsha`` only
(``worker_rules(allow_eval=False)``) cannot run Lua of its own, and runs the store's
scripts once an admin preloaded them (``rac_store.scripts.preload``); after the cache
is emptied its calls fail with StorePermissionError, writing nothing, until they are
loaded again. All against real redis-servers.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from rac_store import (
    AuditStore,
    RetryPolicy,
    StorePermissionError,
    StoreUnavailableError,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.acl import worker_rules
from rac_store.connect import async_client_from_url
from rac_store.scripts import Script, preload

from ..conftest import ACL_PASSWORD
from ..support.async_facade import LoopThread, SyncFacade
from ..support.faults import digest
from ..support.redis_server import RedisServer, running_redis

pytestmark = pytest.mark.redis_only

THRESHOLD_MS = 100
ENDLESS = "local n = 0 while true do n = n + 1 end"


@pytest.fixture
def busy_server() -> Iterator[RedisServer]:
    with running_redis(["--busy-reply-threshold", str(THRESHOLD_MS)]) as server:
        server.client().execute_command(
            "ACL", "SETUSER", "rac-worker", "on", f">{ACL_PASSWORD}", *worker_rules()
        )
        yield server


def _rogue(server: RedisServer) -> threading.Thread:
    """A worker whose own EVAL never ends (until an admin's SCRIPT KILL)."""
    rogue = server.client(username="rac-worker", password=ACL_PASSWORD, socket_timeout=None)

    def run() -> None:
        with contextlib.suppress(redis.ResponseError):  # killed
            rogue.eval(ENDLESS, 0)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(THRESHOLD_MS / 1000 + 0.1)
    return thread


def test_an_endless_eval_makes_the_store_wait_then_give_up(
    busy_server: RedisServer, loop_thread: LoopThread
) -> None:
    admin = busy_server.client()
    login = {"username": "rac-worker", "password": ACL_PASSWORD}
    brief = RetryPolicy(busy_timeout=0.5)
    store = AuditStore(busy_server.client(**login), retry=brief)
    astore = SyncFacade.open(
        loop_thread, lambda: async_client_from_url(busy_server.url, **login), retry=brief
    )
    patient = AuditStore(busy_server.client(**login), retry=RetryPolicy(busy_timeout=5))
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    rogue = _rogue(busy_server)
    took: dict[str, float] = {}
    try:
        for name, each in (("sync", store), ("async, auto-pipelined", astore)):
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="busy running a script"):
                each.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
            took[name] = time.monotonic() - started
        # An admin ends it; a store that keeps re-sending (busy_timeout 5 s) gets through.
        threading.Timer(0.3, admin.script_kill).start()
        started = time.monotonic()
        outcome = patient.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
        took["patient, SCRIPT KILL at 0.3 s"] = time.monotonic() - started
    finally:
        with contextlib.suppress(redis.ResponseError):
            admin.script_kill()  # not busy any more, unless a check above failed
        rogue.join(5)
        astore.close()
    assert outcome == "RECORDED"
    figures = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in took.items())
    print(
        f"\n[endless EVAL] busy-reply-threshold {THRESHOLD_MS} ms, busy_timeout 0.5 s;"
        f" StoreUnavailableError / RECORDED after: {figures}"
    )


def test_a_worker_without_eval_runs_the_preloaded_scripts_only(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    user = "evalsha-worker"
    rules = worker_rules(allow_eval=False)
    assert "+eval" not in rules and "+script|load" not in rules and "+evalsha" in rules
    redis_client.execute_command("ACL", "SETUSER", user, "reset", "on", f">{ACL_PASSWORD}", *rules)
    try:
        shas = preload(redis_client)
        assert set(shas) == set(Script)
        worker = redis_server.client(username=user, password=ACL_PASSWORD)
        store = AuditStore(worker)
        run = uuid.uuid4()
        store.add_expectations(run, create_run_expectations(run))
        assert store.add_ack(run, create_domain_ack(run, "logs", "start_trace")) == "RECORDED"
        with pytest.raises(redis.ResponseError, match=r"NOPERM|no permissions"):
            worker.eval(ENDLESS, 0)  # no Lua of its own
        redis_client.script_flush()  # a restart or failover empties the cache
        before = digest(redis_client)
        with pytest.raises(StorePermissionError, match="eval"):
            store.add_ack(run, create_domain_ack(run, "policies", "evaluate_policy"))
        assert digest(redis_client) == before
        preload(redis_client)  # the admin loads them again
        assert store.add_ack(run, create_domain_ack(run, "policies", "evaluate_policy")) == (
            "RECORDED"
        )
    finally:
        redis_client.acl_deluser(user)
