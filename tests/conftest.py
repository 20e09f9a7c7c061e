"""Shared fixtures: a private redis-server and Redis Cluster per session; stores on each backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
from redis.cluster import RedisCluster

from rac_store import AuditStore, reset_audit_store
from rac_store.acl import inspector_rules, worker_rules
from rac_store.embedded import (
    EmbeddedServer,
    create_embedded_async_client,
    create_embedded_client,
    create_embedded_server,
)

from .support.async_facade import LoopThread, SyncFacade
from .support.cluster import LocalCluster
from .support.redis_server import RedisServer
from .support.targets import ServerTarget
from .support.webhook import Webhook

SERVERS = ("redis", pytest.param("cluster", marks=pytest.mark.cluster))
"""Real servers: the private redis-server, and the session's local Redis Cluster."""
SYNC_BACKENDS = (
    "embedded",
    "redis",
    "redis-acl",
    "redis-resp3",
    pytest.param("cluster", marks=pytest.mark.cluster),
)
"""``redis-acl``: the session's server, the store logged in as a least-privilege worker
(rac_store.acl.worker_rules); ``raw_client`` stays the admin, for inspection. ``cluster``: the
session's local Redis Cluster. ``redis-resp3``: the session's server, the store's client
speaking RESP3 (``protocol=3``: maps, sets and doubles where RESP2 has flat arrays)."""
ASYNC_BACKENDS = (
    "async-embedded",
    "async-redis",
    "async-redis-acl",
    "async-redis-resp3",
    pytest.param("async-cluster", marks=pytest.mark.cluster),
)
"""AsyncAuditStore behind a sync facade (tests/support/async_facade.py); ``-acl`` as the worker."""
BACKENDS = SYNC_BACKENDS + ASYNC_BACKENDS

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


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A Redis Cluster (3 primaries, 3 replicas) this session starts on free loopback ports."""
    cluster = LocalCluster().start()
    yield cluster
    cluster.cleanup()


@pytest.fixture
def cluster(redis_cluster: LocalCluster) -> LocalCluster:
    """The session's cluster, emptied (data and script caches) before the test."""
    redis_cluster.flush()
    return redis_cluster


@pytest.fixture
def cluster_client(redis_cluster: LocalCluster) -> Iterator[RedisCluster]:
    """A cluster client of the session's cluster, every node emptied before the test."""
    redis_cluster.flush()
    client = redis_cluster.client()
    yield client
    client.close()


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> ServerTarget:
    """The private redis-server, or the session's cluster, for tests that need a URL."""
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        makers = [lambda port=port: cluster.node_client(port) for port in cluster.primary_ports()]
        return ServerTarget(cluster.url, request.getfixturevalue("cluster_client"), makers)
    single: RedisServer = request.getfixturevalue("redis_server")
    return ServerTarget(single.url, request.getfixturevalue("redis_client"), [single.client])


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the caller's RAC/AOS environment or a stale singleton.

    The session's servers run without persistence (speed): stores may start on them
    (RAC_ALLOW_NO_PERSISTENCE); the tests of that check unset it.
    """
    for name in ("AOS_MODE", "RAC_ENABLED", "AUDIT_REDIS_ENABLED", "RAC_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAC_ALLOW_NO_PERSISTENCE", "true")
    reset_audit_store()
    yield
    reset_audit_store()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend a contract test runs on."""
    return str(request.param)


@pytest.fixture
def fake_server() -> EmbeddedServer:
    """A fresh embedded server for the test (the kind the store makes by default)."""
    return create_embedded_server()


@pytest.fixture
def raw_client(backend: str, request: pytest.FixtureRequest) -> Any:
    """A sync client of the test's server: a fresh embedded one, the redis-server or the cluster."""
    if backend.endswith("embedded"):
        return create_embedded_client(request.getfixturevalue("fake_server"))
    if backend.endswith("cluster"):
        return request.getfixturevalue("cluster_client")
    return request.getfixturevalue("redis_client")


@pytest.fixture
def store_factory(backend: str, raw_client: Any, request: pytest.FixtureRequest) -> StoreFactory:
    """Makes stores that share the test's server (so two stores see one data set)."""
    if backend.startswith("async-"):
        return request.getfixturevalue("async_store_factory")  # type: ignore[no-any-return]
    if backend == "redis-acl":
        server: RedisServer = request.getfixturevalue("redis_server")
        worker = request.getfixturevalue("acl_users")["worker"]

        def make_as_worker(**options: Any) -> AuditStore:
            return AuditStore(server.client(username=worker, password=ACL_PASSWORD), **options)

        return make_as_worker
    if backend == "redis-resp3":
        resp3: RedisServer = request.getfixturevalue("redis_server")

        def make_resp3(**options: Any) -> AuditStore:
            return AuditStore(resp3.client(protocol=3), **options)

        return make_resp3

    def make(**options: Any) -> AuditStore:
        return AuditStore(raw_client, **options)

    return make


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    """One event loop in a thread of its own, running the async stores of the session."""
    runner = LoopThread()
    yield runner
    runner.close()


@pytest.fixture
def async_store_factory(
    backend: str, raw_client: Any, loop_thread: LoopThread, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Any]]:
    """Makes AsyncAuditStores on the test's server, each behind a sync facade."""
    if backend == "async-embedded":
        server = request.getfixturevalue("fake_server")

        def make_client() -> Any:
            return create_embedded_async_client(server)
    elif backend == "async-cluster":
        seed = request.getfixturevalue("redis_cluster").ports[0]

        def make_client() -> Any:
            return redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=seed)
    else:
        port = request.getfixturevalue("redis_server").port
        login: dict[str, Any] = {}
        if backend.endswith("-acl"):
            login = {"username": request.getfixturevalue("acl_users")["worker"]}
            login["password"] = ACL_PASSWORD
        if backend.endswith("-resp3"):
            login["protocol"] = 3

        def make_client() -> Any:
            return redis.asyncio.Redis(host="127.0.0.1", port=port, **login)

    made: list[SyncFacade] = []

    def make(**options: Any) -> SyncFacade:
        facade = SyncFacade.open(loop_thread, make_client, **options)
        made.append(facade)
        return facade

    yield make
    for facade in made:
        facade.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> AuditStore:
    """A store on the test's backend."""
    return store_factory()


@pytest.fixture(params=("embedded", "redis"))
def any_server(request: pytest.FixtureRequest) -> Any:
    """A fresh embedded server, or the session's private redis-server emptied for the test."""
    if request.param == "embedded":
        return create_embedded_server()
    request.getfixturevalue("redis_client")  # empties the server
    return request.getfixturevalue("redis_server")


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[Callable[..., Webhook]]:
    """Starts local webhook receivers (``webhook(*options)``), each stopped after the test."""
    started: list[Webhook] = []

    def start(*options: str) -> Webhook:
        hook = Webhook(tmp_path / f"webhook-{len(started)}.jsonl", *options)
        started.append(hook)
        return hook

    yield start
    for hook in started:
        hook.stop()
