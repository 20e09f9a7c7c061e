"""The sync hot path's direct send (rac_store/direct.py): where it is used, and that it
answers and fails exactly as ``redis.Redis.execute_command`` does."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from rac_store import (
    AckOutcome,
    AuditStore,
    RetryPolicy,
    StoreResetError,
    StoreUnavailableError,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.direct import DirectSender, direct_sender
from rac_store.scripts import Script

from .support.redis_server import RedisServer

pytestmark = pytest.mark.redis_only

RAISES_ERROR = "return redis.error_reply('RAC_BADARG ttl must be positive')"


def _declared(store: AuditStore) -> uuid.UUID:
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    return run


def _evalsha_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {
        name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    }


class PatchedRedis(redis.Redis):
    """A client whose execute_command is wrapped (as tracers and test proxies do)."""

    @functools.wraps(redis.Redis.execute_command)
    def execute_command(self, *args: Any, **options: Any) -> Any:
        return super().execute_command(*args, **options)


def test_a_plain_client_sends_the_hot_path_directly(redis_client: redis.Redis) -> None:
    store = AuditStore(redis_client)
    assert isinstance(store._sender._send_hot, DirectSender)
    run = _declared(store)
    store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))  # the script is loaded
    before = _evalsha_calls(redis_client)
    outcome = store.add_ack(run, create_domain_ack(run, "incidents", "create_incident"))
    assert outcome is AckOutcome.RECORDED
    after = _evalsha_calls(redis_client)
    assert (after["evalsha"] - before["evalsha"], after["eval"] - before["eval"]) == (1, 0)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(PatchedRedis.from_url, id="wrapped-execute_command"),
        pytest.param(
            lambda url: redis.Redis.from_url(url, single_connection_client=True), id="single"
        ),
        pytest.param(lambda url: redis.Redis.from_url(url, encoding="latin-1"), id="latin-1"),
        pytest.param(lambda url: fakeredis.FakeRedis(), id="fakeredis"),
    ],
)
def test_other_clients_keep_execute_command(redis_server: RedisServer, make: Any) -> None:
    client = make(redis_server.url)
    assert direct_sender(client) is None
    client.close()


def test_a_response_callback_for_script_calls_keeps_execute_command(
    redis_client: redis.Redis,
) -> None:
    assert direct_sender(redis_client) is not None
    redis_client.set_response_callback("EVALSHA", lambda reply, **_: reply)
    assert direct_sender(redis_client) is None


def test_replies_and_errors_are_those_of_execute_command(redis_server: RedisServer) -> None:
    for options in ({}, {"decode_responses": True}):
        client = redis_server.client(**options)
        direct = direct_sender(client)
        assert direct is not None
        echo = client.script_load("return {ARGV[1], tonumber(ARGV[2]), KEYS[1]}")
        failing = client.script_load(RAISES_ERROR)
        command = ("EVALSHA", echo, 1, "k:é", "ünï", 42)
        assert direct(command) == client.execute_command(*command)
        for bad, error in (
            (("EVALSHA", failing, 0), redis.ResponseError),
            (("EVALSHA", "0" * 40, 0), redis.exceptions.NoScriptError),
            (("EVALSHA", echo, 0, object()), redis.DataError),
        ):
            with pytest.raises(error) as direct_error:
                direct(bad)
            with pytest.raises(error) as their_error:
                client.execute_command(*bad)
            assert type(direct_error.value) is type(their_error.value)
            assert str(direct_error.value) == str(their_error.value)
        client.close()


def test_the_connection_goes_back_to_the_pool_after_replies_and_errors(
    redis_server: RedisServer,
) -> None:
    """A pool of one connection: a call that kept it would make the next one wait and fail."""
    pool = redis.BlockingConnectionPool(
        host="127.0.0.1", port=redis_server.port, max_connections=1, timeout=0.5
    )
    client = redis.Redis(connection_pool=pool)
    direct = direct_sender(client)
    assert direct is not None
    failing = client.script_load(RAISES_ERROR)
    for _ in range(3):
        with pytest.raises(redis.ResponseError):
            direct(("EVALSHA", failing, 0))
        with pytest.raises(redis.DataError):
            direct(("EVALSHA", failing, 0, object()))
        assert direct(("PING",)) == b"PONG"
    client.close()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


def test_a_restarted_server_is_reconnected_to(own_server: RedisServer) -> None:
    """The pooled connection is dead after a restart: redis-py's Retry reconnects, as before."""
    client = own_server.client()
    store = AuditStore(client, retry=RetryPolicy(attempts=1))  # only redis-py's own retry
    assert isinstance(store._sender._send_hot, DirectSender)
    run = _declared(store)
    store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
    own_server.kill()
    own_server.restart()  # without persistence: the store's data, and its epochs, are gone
    ack = create_domain_ack(run, "incidents", "create_incident")
    # The dead connection was replaced and the call reached the new server, whose answer
    # is reset detection's (docs/reliability.md), not a connection error.
    with pytest.raises(StoreResetError, match="is gone"):
        store.add_ack(run, ack)
    fresh = AuditStore(client)  # a store opened now works on the same (reconnected) client
    assert fresh.add_ack(run, ack) is AckOutcome.DRIFT
    client.close()


def test_an_unreachable_server_is_reported_as_before(own_server: RedisServer) -> None:
    client = own_server.client(socket_connect_timeout=0.5)
    store = AuditStore(client, retry=RetryPolicy(attempts=2, base_delay=0.01))
    run = _declared(store)
    own_server.stop()
    with pytest.raises(StoreUnavailableError, match="add_ack: Redis unreachable") as caught:
        store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    client.close()


def test_the_other_paths_still_use_execute_command(redis_client: redis.Redis) -> None:
    """NOSCRIPT goes on as before: the script's text, once, through the client."""
    store = AuditStore(redis_client)
    run = _declared(store)
    redis_client.script_flush()
    before = _evalsha_calls(redis_client)
    assert store.add_ack(run, create_domain_ack(run, "logs", "start_trace")) is (
        AckOutcome.RECORDED
    )
    after = _evalsha_calls(redis_client)
    assert (after["evalsha"] - before["evalsha"], after["eval"] - before["eval"]) == (1, 1)
    sha = store._scripts[Script.ADD_ACKS].sha
    assert redis_client.script_exists(sha) == [True]
