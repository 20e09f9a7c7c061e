"""Shared fixtures: a private redis-server per session, and stores on both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis

from rac_store import AuditStore, reset_audit_store
from rac_store.acl import inspector_rules, worker_rules

from .support.redis_server import RedisServer

BACKENDS = ("embedded", "redis", "redis-acl")
"""``redis-acl``: the session's server, the store logged in as a least-privilege worker
(rac_store.acl.worker_rules); ``raw_client`` stays the admin, for inspection."""

ACL_PASSWORD = "rac-test-password"
ACL_PREFIXES = ("rac", "other")  # every prefix the contract suite's stores use

StoreFactory = Callable[..., AuditStore]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server this session starts on a free loopback port."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def acl_users(redis_server: RedisServer) -> dict[str, str]:
    """The least-privilege users on the session's server: role -> user name."""
    admin = redis_server.client()
    users = {"worker": "rac-worker", "inspector": "rac-inspector"}
    rules = {"worker": worker_rules(*ACL_PREFIXES), "inspector": inspector_rules(*ACL_PREFIXES)}
    for role, user in users.items():
        admin.execute_command(
            "ACL", "SETUSER", user, "reset", "on", f">{ACL_PASSWORD}", *rules[role]
        )
    admin.close()
    return users


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session's private server, emptied before the test."""
    client = redis_server.client()
    client.flushall()
    client.script_flush()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the caller's RAC/AOS environment or a stale singleton."""
    for name in ("AOS_MODE", "RAC_ENABLED", "AUDIT_REDIS_ENABLED", "RAC_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    reset_audit_store()
    yield
    reset_audit_store()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend a contract test runs on."""
    return str(request.param)


@pytest.fixture
def raw_client(backend: str, request: pytest.FixtureRequest) -> Any:
    """A client of the test's server: a fresh embedded one, or the private redis-server."""
    if backend == "embedded":
        return fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 0)))
    return request.getfixturevalue("redis_client")


@pytest.fixture
def store_factory(raw_client: Any, backend: str, request: pytest.FixtureRequest) -> StoreFactory:
    """Makes stores that share the test's server (so two stores see one data set)."""
    if backend == "redis-acl":
        server: RedisServer = request.getfixturevalue("redis_server")
        worker = request.getfixturevalue("acl_users")["worker"]

        def make_as_worker(**options: Any) -> AuditStore:
            return AuditStore(server.client(username=worker, password=ACL_PASSWORD), **options)

        return make_as_worker

    def make(**options: Any) -> AuditStore:
        return AuditStore(raw_client, **options)

    return make


@pytest.fixture
def store(store_factory: StoreFactory) -> AuditStore:
    """A store on the test's backend."""
    return store_factory()
