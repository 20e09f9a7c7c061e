"""Issue 15, item 6: one retry policy, sync and asyncio, with a bounded time to give up.

A redis-server stopped with SIGSTOP accepts connections (the kernel does) and never
answers. Each store sends through a proxy that counts the connections clients give
up on: redis-py closes a connection after a timeout, so that is one per send. With
clients made from a URL (no redis-py re-sends) the sync store, the asyncio store's
auto-pipelined acks and its other calls all send exactly ``RetryPolicy.attempts``
times and raise StoreUnavailableError; a client passed in that re-sends by itself
(redis-py 8's ``Redis(host=...)`` does, 10 times) has those sends counted against
the same budget instead of multiplied by it. The times to give up are printed
(docs/reliability.md), never asserted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from rac_store import (
    AsyncAuditStore,
    AuditStore,
    RetryPolicy,
    StoreUnavailableError,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.connect import client_resends

from ..support.fault_proxy import FaultProxy
from ..support.redis_server import RedisServer

pytestmark = [pytest.mark.redis_only, pytest.mark.slow]

TIMEOUT = 0.5
POLICY = RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.2)
CLIENT = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}


@pytest.fixture
def stopped() -> Iterator[tuple[RedisServer, FaultProxy, Callable[[], None]]]:
    """A private server behind a proxy, and a function that SIGSTOPs the server."""
    server = RedisServer().start()
    proxy = FaultProxy(server.port)
    assert server.process is not None
    pid = server.process.pid

    def stop() -> None:
        os.kill(pid, signal.SIGSTOP)

    try:
        yield server, proxy, stop
    finally:
        os.kill(pid, signal.SIGCONT)
        proxy.close()
        server.cleanup()


def _surface(call: Callable[[], Any]) -> tuple[float, BaseException]:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as caught:
        call()
    return time.monotonic() - started, caught.value


def test_sync_and_async_send_attempts_times_then_give_up(
    stopped: tuple[RedisServer, FaultProxy, Callable[[], None]],
) -> None:
    _server, proxy, stop = stopped
    run = uuid.uuid4()
    sync_store = AuditStore.from_url(proxy.url, client_options=CLIENT, retry=POLICY)
    sync_store.add_expectations(run, create_run_expectations(run))
    figures: dict[str, tuple[float, int]] = {}

    async def async_calls() -> None:
        store = AsyncAuditStore.from_url(proxy.url, client_options=CLIENT, retry=POLICY)
        await store.initialize()
        await store.add_ack(run, create_domain_ack(run, "x", "warm-up"))
        stop()
        for name, call in (
            ("async add_ack (auto-pipelined)", lambda: store.add_ack(run, _ack(run))),
            ("async add_expectations", lambda: store.add_expectations(run, _exps(run))),
        ):
            proxy.count_senders()
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError) as caught:
                await call()
            assert isinstance(caught.value.__cause__, redis.TimeoutError | redis.ConnectionError)
            figures[name] = (time.monotonic() - started, proxy.senders())
        await store.client.aclose()

    asyncio.run(async_calls())
    proxy.count_senders()
    seconds, error = _surface(lambda: sync_store.add_ack(run, _ack(run)))
    figures["sync add_ack"] = (seconds, proxy.senders())
    assert isinstance(error.__cause__, redis.TimeoutError | redis.ConnectionError)
    bound = POLICY.worst_case(send_timeout=2 * TIMEOUT)
    for name, (took, sends) in figures.items():
        print(
            f"\n[stopped server] {name}: {sends} sends, StoreUnavailableError after"
            f" {took:.2f} s (policy bound {bound:.2f} s)"
        )
    assert {name: sends for name, (_, sends) in figures.items()} == {
        name: POLICY.attempts for name in figures
    }


def test_a_client_that_resends_by_itself_is_counted_not_multiplied(
    stopped: tuple[RedisServer, FaultProxy, Callable[[], None]],
) -> None:
    _server, proxy, stop = stopped
    own = redis.Redis(host="127.0.0.1", port=proxy.port, **CLIENT)  # redis-py's own Retry
    resends = client_resends(own)
    store = AuditStore(own, retry=POLICY)
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    stop()
    proxy.count_senders()
    seconds, _ = _surface(lambda: store.add_ack(run, _ack(run)))
    sends = proxy.senders()
    print(
        f"\n[stopped server] sync add_ack, client with {resends} re-sends of its own:"
        f" {sends} sends, StoreUnavailableError after {seconds:.2f} s"
    )
    # The store sends once (3 // (1 + resends) rounds down to 1); only the client re-sends:
    # 1 + resends sends, not (1 + resends) * attempts.
    assert sends == (1 + resends if resends else POLICY.attempts)


def _ack(run: uuid.UUID) -> Any:
    return create_domain_ack(run, "logs", "start_trace")


def _exps(run: uuid.UUID) -> Any:
    return create_run_expectations(run)
