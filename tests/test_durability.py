"""Durability modes, the environment rules, and the process-wide singleton."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from rac_store import (
    AuditStore,
    RACDurabilityError,
    StoreDurabilityMode,
    _determine_durability_mode,
    get_audit_store,
    reset_audit_store,
)

from .support.redis_server import RedisServer

MEMORY, REDIS = StoreDurabilityMode.MEMORY, StoreDurabilityMode.REDIS


def test_local_default_is_memory() -> None:
    assert _determine_durability_mode(None) is MEMORY
    store = AuditStore()
    assert store.durability_mode is MEMORY and store.is_durable is False


@pytest.mark.parametrize("mode", ["test", "prod", "PROD"])
def test_test_and_prod_require_redis(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv("AOS_MODE", mode)
    with pytest.raises(RACDurabilityError, match="RAC_REDIS_URL"):
        _determine_durability_mode(None)
    with pytest.raises(RACDurabilityError, match="RAC_REDIS_URL"):
        AuditStore()


def test_rac_disabled_allows_memory_in_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOS_MODE", "prod")
    monkeypatch.setenv("RAC_ENABLED", "false")
    assert _determine_durability_mode(None) is MEMORY


def test_explicit_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOS_MODE", "prod")
    assert _determine_durability_mode(redis.Redis()) is REDIS  # no connection is made
    assert _determine_durability_mode(fakeredis.FakeRedis()) is MEMORY


@pytest.mark.parametrize(("name", "value"), [("AOS_MODE", "staging"), ("RAC_ENABLED", "maybe")])
def test_unreadable_environment_is_an_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("AOS_MODE", "prod")
    monkeypatch.setenv(name, value)
    with pytest.raises(RACDurabilityError, match=name):
        _determine_durability_mode(None)


def test_redis_url_from_environment(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    monkeypatch.setenv("AOS_MODE", "prod")
    monkeypatch.setenv("RAC_REDIS_URL", redis_server.url)
    store = AuditStore(prefix="envtest")
    assert store.durability_mode is REDIS and store.is_durable
    assert store.client.connection_pool.connection_kwargs["port"] == redis_server.port
    monkeypatch.setenv("AUDIT_REDIS_ENABLED", "false")
    with pytest.raises(RACDurabilityError):
        AuditStore()


def test_from_url(redis_server: RedisServer) -> None:
    store = AuditStore.from_url(redis_server.url, prefix="fromurl")
    assert store.is_durable
    store.close()


def test_singleton_is_made_once_and_can_be_reset() -> None:
    first = get_audit_store()
    assert get_audit_store() is first
    assert get_audit_store(fakeredis.FakeRedis()) is first  # the client is used only on first call
    reset_audit_store()
    assert get_audit_store() is not first
