"""Issue 6, item 6: least privilege (ACL users) and TLS.

The whole contract suite also runs as the worker (backend ``redis-acl`` in
tests/conftest.py). Here: the worker and the inspector can do their job and
nothing else — no key outside the prefix (not even from inside a script), no
FLUSHALL, CONFIG, SCRIPT FLUSH, KEYS, DEBUG, ACL or Pub/Sub — and the inspector
reads but cannot write. TLS: ``rediss://`` with the CA works; a wrong CA fails
closed with StoreTLSError.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis

from rac_store import (
    AuditExpectation,
    AuditReconciler,
    AuditStatus,
    AuditStore,
    InvalidInputError,
    StorePermissionError,
    StoreTLSError,
    StoreUnavailableError,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.acl import worker_rules

from ..conftest import ACL_PASSWORD
from ..support.faults import digest
from ..support.redis_server import RedisServer, running_redis
from ..support.tls import make_ca, make_tls_files

pytestmark = pytest.mark.redis_only

DENIED = r"NOPERM|no permissions|The user executing the script can't"
"""Redis 7.0 denies a command inside a script with an ERR text, not NOPERM."""

FORBIDDEN: dict[str, tuple[Any, ...]] = {
    "write outside the prefix": ("SET", "outside:key", "1"),
    "read outside the prefix": ("HGET", "outside:key", "f"),
    "script declaring an outside key": (
        "EVAL", "return redis.call('HSET', KEYS[1], 'f', 'v')", 1, "outside:key",
    ),
    "script with an undeclared outside key": (
        "EVAL", "return redis.call('HSET', 'outside:key', 'f', 'v')", 0,
    ),
    "script deleting through a non-granted command": (
        "EVAL", "return redis.call('UNLINK', KEYS[1])", 1, "rac:meta",
    ),
    "FLUSHALL": ("FLUSHALL",),
    "FLUSHDB": ("FLUSHDB",),
    "CONFIG GET": ("CONFIG", "GET", "maxmemory"),
    "CONFIG SET": ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"),
    "SCRIPT FLUSH": ("SCRIPT", "FLUSH"),
    "KEYS": ("KEYS", "*"),
    "DEBUG": ("DEBUG", "DIGEST"),
    "ACL SETUSER": ("ACL", "SETUSER", "rac-worker", "+@all"),
    "PUBLISH": ("PUBLISH", "channel", "x"),
    "MIGRATE-ish RENAME": ("RENAME", "rac:meta", "rac:stolen"),
}  # fmt: skip


@pytest.fixture
def as_user(
    redis_server: RedisServer, acl_users: dict[str, str]
) -> Iterator[Callable[[str], redis.Redis]]:
    with contextlib.ExitStack() as opened:

        def login(role: str) -> redis.Redis:
            client = redis_server.client(username=acl_users[role], password=ACL_PASSWORD)
            return opened.enter_context(client)

        yield login


@pytest.fixture
def seeded_run(redis_client: redis.Redis, as_user: Callable[[str], redis.Redis]) -> uuid.UUID:
    """A run written by the worker (and a key outside the prefix, written by the admin)."""
    worker = AuditStore(as_user("worker"))
    run = uuid.uuid4()
    worker.add_expectations(run, create_run_expectations(run))
    worker.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
    redis_client.hset("outside:key", "f", "admin's")
    return run


@pytest.mark.parametrize("backend", ["redis-acl"], indirect=True)
def test_the_contract_suite_really_runs_as_the_worker(
    store: AuditStore, acl_users: dict[str, str]
) -> None:
    assert store.client.get_connection_kwargs()["username"] == acl_users["worker"]
    with pytest.raises(redis.exceptions.NoPermissionError):
        store.client.flushall()


@pytest.mark.parametrize("role", ["worker", "inspector"])
@pytest.mark.parametrize("name", list(FORBIDDEN))
def test_neither_user_may(
    name: str,
    role: str,
    seeded_run: uuid.UUID,
    redis_client: redis.Redis,
    as_user: Callable[[str], redis.Redis],
) -> None:
    before = digest(redis_client)
    with pytest.raises(redis.ResponseError, match=DENIED):
        as_user(role).execute_command(*FORBIDDEN[name])
    assert digest(redis_client) == before
    assert redis_client.hget("outside:key", "f") == b"admin's"


def test_inspector_reads_everything_the_store_shows(
    seeded_run: uuid.UUID, as_user: Callable[[str], redis.Redis]
) -> None:
    run = seeded_run
    inspector = AuditStore(as_user("inspector"))  # start-up checks and layout check: reads
    statuses = {e.key(): e.status for e in inspector.get_expectations(run)}
    assert statuses[("incidents", "create_incident")] is AuditStatus.ACKED
    assert [a.key() for a in inspector.get_acks(run)] == [("incidents", "create_incident")]
    assert inspector.load_from_redis(run)
    assert inspector.get_pending_run_ids() == [str(run)]
    assert inspector.server_time_ms() > 0


def test_inspector_reads_through_the_reconciler_but_cannot_sweep_or_record(
    seeded_run: uuid.UUID, redis_client: redis.Redis, as_user: Callable[[str], redis.Redis]
) -> None:
    run = seeded_run
    worker = AuditStore(as_user("worker"))

    def overdue(action: str) -> None:
        worker.add_expectations(run, [AuditExpectation(run, "late", action, deadline_ms=0)])
        time.sleep(0.005)

    overdue("first")
    assert len(AuditReconciler(worker).sweep().missing) == 1  # a finding to read
    overdue("second")  # due, left for the inspector's sweep
    inspector = AuditReconciler(AuditStore(as_user("inspector")))
    assert inspector.snapshot(run) is not None
    assert [p.run_id for p in inspector.pending(due_only=True).runs] == [str(run)]
    assert {e.action for e in inspector.check_deadline_violations(run)} == {"first", "second"}
    assert len(list(inspector.iter_findings())) == 1
    before = digest(redis_client)
    for write in (inspector.sweep, lambda: inspector.reconcile(run)):  # marks / records
        with pytest.raises(StorePermissionError, match=DENIED):
            write()
        assert digest(redis_client) == before


def test_inspector_cannot_write(
    seeded_run: uuid.UUID, redis_client: redis.Redis, as_user: Callable[[str], redis.Redis]
) -> None:
    run = seeded_run
    inspector = AuditStore(as_user("inspector"))
    writes: dict[str, Callable[[], Any]] = {
        "add_expectations": lambda: inspector.add_expectations(
            run, [*create_run_expectations(run)[:1], create_run_expectations(run)[0]]
        ),
        "add_ack": lambda: inspector.add_ack(run, create_domain_ack(run, "logs", "start_trace")),
        "add_acks": lambda: inspector.add_acks(run, [create_domain_ack(run, "x", "y")] * 3),
        "update_expectation_status": lambda: inspector.update_expectation_status(
            run, "logs", "start_trace", AuditStatus.MISSING
        ),
        "clear_run": lambda: inspector.clear_run(run),
    }
    before = digest(redis_client)
    for name, call in writes.items():
        with pytest.raises(StorePermissionError, match=DENIED):
            call()
        assert digest(redis_client) == before, name


def test_inspector_cannot_create_a_store(
    redis_client: redis.Redis, as_user: Callable[[str], redis.Redis]
) -> None:
    """On an empty server the layout record is missing; only a worker may write it."""
    with pytest.raises(StorePermissionError):
        AuditStore(as_user("inspector"))
    assert redis_client.dbsize() == 0


def test_worker_cannot_use_another_prefix(
    redis_client: redis.Redis, as_user: Callable[[str], redis.Redis]
) -> None:
    with pytest.raises(StorePermissionError):
        AuditStore(as_user("worker"), prefix="elsewhere")
    assert redis_client.dbsize() == 0


# -- issue 15, item 2: prefixes neither nest nor overlap --------------------------------
PREFIX_PAIRS = [("rac", "rac:tenant"), ("rac:tenant", "rac"), ("rac", "racx"), ("a:b", "a:b:c")]
"""(the worker's prefix, another store's prefix): nested both ways, and a longer sibling."""


@pytest.mark.parametrize(("mine", "theirs"), PREFIX_PAIRS)
def test_a_worker_cannot_touch_another_prefixs_keys(
    redis_server: RedisServer, redis_client: redis.Redis, mine: str, theirs: str
) -> None:
    """The worker of one prefix (``rac-store acl --prefix``'s rules, exact key patterns)
    can neither open, read, ack nor clear the store of another prefix, nested ones
    included; with its own prefix it can do everything."""
    user = "prefix-worker"
    redis_client.execute_command(
        "ACL", "SETUSER", user, "reset", "on", f">{ACL_PASSWORD}", *worker_rules(mine)
    )
    try:
        admin = AuditStore(redis_client, prefix=theirs)
        run = uuid.uuid4()
        admin.add_expectations(run, create_run_expectations(run))
        admin.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
        client = redis_server.client(username=user, password=ACL_PASSWORD)
        own = AuditStore(client, prefix=mine)  # its own store works
        assert own.add_ack(run, create_domain_ack(run, "x", "y")) == "DRIFT"
        before = digest(redis_client)
        with pytest.raises(StorePermissionError):
            AuditStore(client, prefix=theirs)  # cannot open it
        # ... nor send the other store's calls (its own store's sender, their keys)
        their_core = admin.core
        their_core_calls: dict[str, Any] = {
            "read expectations": their_core.read_expectations(run),
            "read acks": their_core.read_acks(run),
            "ack": their_core.add_ack(run, create_domain_ack(run, "logs", "start_trace")),
            "status": their_core.update_status(run, "logs", "start_trace", "MISSING"),
            "clear": their_core.clear_run(run),
            "pending index": their_core.pending_run_ids(None, None),
            "findings": their_core.findings_tail(),
        }
        for name, call in their_core_calls.items():
            with pytest.raises(StorePermissionError):
                own.execute(call)
            assert digest(redis_client) == before, name
        for key in (admin.core.keys.meta, *admin.core.keys.for_run(str(run))):
            with pytest.raises(redis.ResponseError, match=DENIED):
                client.execute_command("TYPE", key)
        assert [a.action for a in admin.get_acks(run)] == ["create_incident"]
    finally:
        redis_client.acl_deluser(user)


def test_acl_key_patterns_are_exact() -> None:
    rules = worker_rules("rac")
    assert [r for r in rules if r.startswith("~")] == ["~rac:meta", "~rac:{*}:*"]
    for bad in ("rac*", "r?c", "rac[1]", "rac\\x", "rac x", "{rac}", "rac|x", ""):
        with pytest.raises(InvalidInputError):
            worker_rules(bad)
        with pytest.raises(InvalidInputError):
            AuditStore(fakeredis.FakeRedis(), prefix=bad)


# -- TLS -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    tls = make_tls_files(folder)
    wrong_ca, _ = make_ca(folder / "other", "not-the-servers-ca")
    with running_redis(tls=tls) as server:
        yield server, wrong_ca


def test_rediss_url_with_the_ca_works(
    tls_server: tuple[RedisServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = tls_server
    assert server.tls is not None
    assert server.url.startswith("rediss://")
    store = AuditStore.from_url(
        server.url, client_options={"ssl_ca_certs": str(server.tls.ca_cert)}
    )
    run = uuid.uuid4()
    assert store.add_ack(run, create_domain_ack(run, "x", "y")) == "DRIFT"
    # The environment route: the CA travels in the URL's query string.
    monkeypatch.setenv("RAC_REDIS_URL", f"{server.url}?ssl_ca_certs={server.tls.ca_cert}")
    assert len(AuditStore().get_acks(run)) == 1


def test_wrong_ca_fails_closed(tls_server: tuple[RedisServer, Path]) -> None:
    server, wrong_ca = tls_server
    with pytest.raises(StoreTLSError, match="CERTIFICATE_VERIFY_FAILED"):
        AuditStore.from_url(server.url, client_options={"ssl_ca_certs": str(wrong_ca)})


def test_no_ca_at_all_fails_closed(tls_server: tuple[RedisServer, Path]) -> None:
    """The system trust store does not know the test CA either."""
    server, _ = tls_server
    with pytest.raises(StoreTLSError):
        AuditStore.from_url(server.url)


def test_plain_connection_to_a_tls_port_is_refused(tls_server: tuple[RedisServer, Path]) -> None:
    server, _ = tls_server
    plain = server.url.replace("rediss://", "redis://")
    with pytest.raises(StoreUnavailableError):
        AuditStore.from_url(plain, client_options={"socket_timeout": 2})
