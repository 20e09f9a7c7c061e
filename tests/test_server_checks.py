"""Start-up checks: Redis >= 7, eviction policy, wait_aof support, INFO permission."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio

from rac_store import (
    AsyncAuditStore,
    AuditStore,
    EvictionPolicyWarning,
    PersistenceWarning,
    StorePermissionError,
    UnsupportedServerError,
    WaitAof,
)
from rac_store.server_checks import ServerFacts, check_server, parse_version

INFO_7 = {
    "redis_version": "7.0.15",
    "maxmemory_policy": "noeviction",
    "maxmemory": 0,
    "aof_enabled": 0,
}


def facts(**changes: object) -> ServerFacts:
    return ServerFacts.from_info({**INFO_7, **changes})


@pytest.mark.parametrize(
    ("text", "version"),
    [("7.0.15", (7, 0, 15)), ("7.2", (7, 2, 0)), ("6.2.14", (6, 2, 14)), ("7.4.0-rc1", (7, 4, 0))],
)
def test_parse_version(text: str, version: tuple[int, ...]) -> None:
    assert parse_version(text) == version


@pytest.mark.parametrize("version", ["6.2.14", "5.0.7", "0"])
def test_servers_older_than_7_are_refused(version: str) -> None:
    with pytest.raises(UnsupportedServerError, match=r"needs Redis >= 7\.0"):
        check_server(facts(redis_version=version), aos_mode="local", wait_aof=None)


def test_noeviction_with_an_aof_passes_silently() -> None:
    assert check_server(facts(aof_enabled=1), aos_mode="prod", wait_aof=None) == []


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru", "volatile-ttl", "allkeys-lfu"])
def test_evicting_policy_warns_and_is_refused_in_prod(policy: str) -> None:
    evicting = facts(maxmemory_policy=policy, aof_enabled=1)
    (warning,) = check_server(evicting, aos_mode="test", wait_aof=None)
    assert isinstance(warning, EvictionPolicyWarning)
    assert policy in str(warning) and "noeviction" in str(warning)
    with pytest.raises(UnsupportedServerError, match="AOS_MODE=prod"):
        check_server(evicting, aos_mode="prod", wait_aof=None)


def test_no_aof_warns_and_is_refused_in_prod_unless_allowed() -> None:
    (warning,) = check_server(facts(), aos_mode="local", wait_aof=None)
    assert isinstance(warning, PersistenceWarning)
    assert "appendonly yes" in str(warning) and "allow_no_persistence" in str(warning)
    with pytest.raises(UnsupportedServerError, match=r"AOS_MODE=prod: the server has no AOF"):
        check_server(facts(), aos_mode="prod", wait_aof=None)
    allowed = check_server(facts(), aos_mode="prod", wait_aof=None, allow_no_persistence=True)
    assert allowed == []


def test_wait_aof_needs_7_2_and_an_aof() -> None:
    with pytest.raises(UnsupportedServerError, match=r"WAITAOF \(Redis >= 7.2\)"):
        check_server(facts(aof_enabled=1), aos_mode="local", wait_aof=WaitAof())
    newer = {"redis_version": "7.2.4", "server_name": "valkey"}
    with pytest.raises(UnsupportedServerError, match="appendonly yes"):
        check_server(facts(**newer), aos_mode="local", wait_aof=WaitAof())
    assert check_server(facts(**newer, aof_enabled=1), aos_mode="local", wait_aof=WaitAof()) == []
    # Waiting for replicas only does not need a local AOF (the primary without one still
    # gets the persistence warning: restarted empty, it would empty its replicas too).
    replicas_only = WaitAof(local=0, replicas=1)
    found = check_server(facts(**newer), aos_mode="local", wait_aof=replicas_only)
    assert [type(w) for w in found] == [PersistenceWarning]


# -- against real servers -------------------------------------------------------------


@pytest.mark.redis_only
def test_real_server_passes(redis_client: redis.Redis) -> None:
    assert redis_client.info("server")["redis_version"].startswith("7.")
    AuditStore(redis_client)  # no warning: the session server runs noeviction


@pytest.mark.redis_only
@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru"])
def test_real_evicting_server_warns_then_prod_refuses(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    redis_client.config_set("maxmemory-policy", policy)
    try:
        monkeypatch.setenv("AOS_MODE", "prod")
        with pytest.raises(UnsupportedServerError, match="AOS_MODE=prod"):
            AuditStore(redis_client)
        assert not redis_client.exists("rac:meta")  # refused before touching anything
        monkeypatch.setenv("AOS_MODE", "test")
        with pytest.warns(EvictionPolicyWarning, match=policy):
            AuditStore(redis_client)
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")


@pytest.mark.redis_only
def test_a_reader_is_never_warned_about_persistence(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session's server has no AOF: the writer is warned (refused in prod), a read-only
    store, which writes nothing a restart could lose, is neither."""
    monkeypatch.delenv("RAC_ALLOW_NO_PERSISTENCE")
    with pytest.warns(PersistenceWarning, match="no AOF") as caught:
        AuditStore(redis_client)
    assert len(caught) == 1
    monkeypatch.setenv("AOS_MODE", "prod")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        assert AuditStore(redis_client, read_only=True).read_only
    with pytest.raises(UnsupportedServerError, match="AOS_MODE=prod: the server has no AOF"):
        AuditStore(redis_client)


@pytest.mark.redis_only
def test_wait_aof_on_redis_7_0_is_refused_with_a_clear_error(redis_client: redis.Redis) -> None:
    with pytest.raises(UnsupportedServerError, match=r"WAITAOF \(Redis >= 7.2\); the server is"):
        AuditStore(redis_client, wait_aof=True)
    assert not redis_client.exists("rac:meta")


@pytest.mark.redis_only
def test_user_without_info_gets_a_clear_permission_error(redis_client: redis.Redis) -> None:
    redis_client.acl_setuser(
        "no-info", enabled=True, passwords=["+pw"], keys=["rac:*"],
        commands=["+@all", "-info"],
    )  # fmt: skip
    try:
        kwargs = redis_client.get_connection_kwargs()
        client = redis.Redis(
            host=kwargs["host"], port=kwargs["port"], username="no-info", password="pw"
        )
        with pytest.raises(StorePermissionError, match=r"may not run INFO .*\+info"):
            AuditStore(client)
        store = AuditStore(client, check_server=False)  # the explicit opt-out works
        assert store.server_time_ms() > 0
    finally:
        redis_client.acl_deluser("no-info")


def test_embedded_backend_skips_server_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """fakeredis has no INFO (pinned here); the embedded store starts without it."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 0)))
    with pytest.raises(redis.ResponseError, match="unknown command 'info'"):
        client.info()
    monkeypatch.setenv("AOS_MODE", "prod")
    store = AuditStore(client)
    assert store.server_time_ms() > 0


def test_wait_aof_on_the_embedded_backend_is_refused() -> None:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 0)))
    with pytest.raises(UnsupportedServerError, match="wait_aof needs a Redis server"):
        AuditStore(client, wait_aof=True)


@pytest.mark.redis_only
def test_async_store_runs_the_same_checks(
    redis_server: Any, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_client.config_set("maxmemory-policy", "allkeys-lfu")

    async def start() -> None:
        async with AsyncAuditStore(redis.asyncio.Redis(port=redis_server.port)):
            pass

    try:
        monkeypatch.setenv("AOS_MODE", "prod")
        with pytest.raises(UnsupportedServerError, match="AOS_MODE=prod"):
            asyncio.run(start())
        assert not redis_client.exists("rac:meta")
        monkeypatch.setenv("AOS_MODE", "test")
        with pytest.warns(EvictionPolicyWarning, match="allkeys-lfu"):
            asyncio.run(start())
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
