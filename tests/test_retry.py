"""The retry decisions of one call (sans-I/O): what is re-sent, how often, for how long."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis.exceptions as rexc

from rac_store import create_domain_ack, create_run_expectations
from rac_store.errors import StoreUnavailableError, map_redis_error, transport_fault
from rac_store.retry import RetryPolicy
from rac_store.testing import embedded_store

from .support.proxy import swap_client


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lost_connections_are_resent_attempts_minus_one_times() -> None:
    retrier = RetryPolicy(attempts=4, base_delay=0.05, max_delay=1.0).retrier()
    delays = [retrier.delay_after(rexc.ConnectionError("gone")) for _ in range(4)]
    assert delays == [0.05, 0.1, 0.2, None]


@pytest.mark.parametrize(
    "refusal",
    [
        rexc.TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"),
        rexc.ClusterDownError("CLUSTERDOWN The cluster is down"),
        rexc.ClusterError("TTL exhausted."),
        rexc.NoScriptError("NOSCRIPT No matching script."),
        rexc.SlotNotCoveredError("slot 7 not covered"),
    ],
)
def test_refusals_are_resent_until_the_busy_timeout(refusal: Exception) -> None:
    clock = Clock()
    retrier = RetryPolicy(base_delay=0.1, max_delay=0.4, busy_timeout=1.0).retrier(clock)
    seen = []
    while (delay := retrier.delay_after(refusal)) is not None:
        seen.append(delay)
        clock.now += delay
    assert seen == pytest.approx([0.1, 0.2, 0.4, 0.3])  # the last pause ends at the timeout


def test_refusals_and_lost_connections_have_separate_budgets() -> None:
    clock = Clock()
    retrier = RetryPolicy(attempts=2, busy_timeout=5.0).retrier(clock)
    assert retrier.delay_after(rexc.TryAgainError("TRYAGAIN")) is not None
    assert retrier.delay_after(rexc.ConnectionError("gone")) is not None
    assert retrier.delay_after(rexc.TryAgainError("TRYAGAIN")) is not None
    assert retrier.delay_after(rexc.ConnectionError("gone")) is None


@pytest.mark.parametrize(
    "error",
    [
        rexc.ResponseError("RAC_BADARG ttl_ms"),
        rexc.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        rexc.AuthenticationError("invalid password"),
        rexc.OutOfMemoryError("OOM command not allowed"),
    ],
)
def test_other_errors_reach_the_caller_at_once(error: Exception) -> None:
    assert RetryPolicy().retrier().delay_after(error) is None


def test_busy_timeout_zero_turns_refusal_retries_off() -> None:
    assert RetryPolicy(busy_timeout=0).retrier().delay_after(rexc.TryAgainError("x")) is None


@pytest.mark.parametrize(
    "error",
    [
        rexc.TryAgainError("TRYAGAIN"),
        rexc.ClusterDownError("CLUSTERDOWN The cluster is down"),
        rexc.ClusterError("TTL exhausted."),
        rexc.SlotNotCoveredError("slot 7 not covered"),
    ],
)
def test_a_cluster_that_stays_busy_is_reported_unavailable(error: Exception) -> None:
    mapped = map_redis_error(error, "add_ack")  # type: ignore[arg-type]
    assert isinstance(mapped, StoreUnavailableError)
    assert str(mapped).startswith("add_ack: Redis Cluster not serving the keys")


class RefusingClient:
    """A client proxy whose first ``refusals`` EVALSHA calls are refused unrun."""

    def __init__(self, client: Any, refusals: int, error: Exception) -> None:
        self._client = client
        self.refusals = refusals
        self.error = error
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] != "EVALSHA":
            return self._client.execute_command(*args, **options)
        self.calls += 1
        if self.calls <= self.refusals:
            raise self.error
        return self._client.execute_command(*args, **options)


def test_store_resends_a_refused_call_until_it_runs() -> None:
    store = embedded_store(retry=RetryPolicy(base_delay=0.001, busy_timeout=5.0))
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    store.add_ack(run, create_domain_ack(run, "x", "warm-up"))  # the script is loaded
    proxy = RefusingClient(store.client, 6, rexc.TryAgainError("TRYAGAIN"))
    swap_client(store, proxy)
    ack = create_domain_ack(run, "logs", "start_trace")
    store.add_ack(run, ack)  # six refusals, more than attempts=4 would allow
    assert proxy.calls == 7
    assert [a.id for a in store.get_acks(run)][1:] == [ack.id]


def test_store_gives_up_after_the_busy_timeout() -> None:
    store = embedded_store(retry=RetryPolicy(base_delay=0.01, busy_timeout=0.1))
    run = uuid.uuid4()
    proxy = RefusingClient(store.client, 10**6, rexc.ClusterDownError("CLUSTERDOWN down"))
    swap_client(store, proxy)
    with pytest.raises(StoreUnavailableError, match="CLUSTERDOWN") as caught:
        store.add_ack(run, create_domain_ack(run, "logs", "start_trace"))
    assert isinstance(caught.value.__cause__, rexc.ClusterDownError)
    assert 2 < proxy.calls < 20
    swap_client(store, proxy._client)
    assert store.get_acks(run) == []


def _raise_in(filename: str) -> BaseException:
    """The error a ``None`` writer raises in code that lives in ``filename``."""
    namespace: dict[str, Any] = {}
    exec(compile("def send(writer):\n    writer.writelines([b''])\n", filename, "exec"), namespace)
    try:
        namespace["send"](None)
    except AttributeError as exc:
        return exc
    raise AssertionError("no error")


def test_a_torn_down_asyncio_transport_counts_as_a_lost_connection() -> None:
    inside = _raise_in("/venv/lib/python3.11/site-packages/redis/asyncio/connection.py")
    lost = transport_fault(inside)
    assert isinstance(lost, rexc.ConnectionError)
    assert lost.__cause__ is inside
    assert RetryPolicy().retrier().delay_after(lost) == 0.05


def test_other_attribute_errors_stay_bugs() -> None:
    assert transport_fault(_raise_in("/app/rac_store/async_store.py")) is None
    assert transport_fault(ValueError("x")) is None


def test_backoff_doubles_up_to_its_cap_with_equal_jitter() -> None:
    from rac_store.retry import Backoff

    backoff = Backoff(base=0.5, cap=4.0)
    lowest = [backoff.delay(n, rng=lambda low, high: low) for n in range(1, 7)]
    highest = [backoff.delay(n, rng=lambda low, high: high) for n in range(1, 7)]
    assert highest == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert lowest == [h / 2 for h in highest]
    assert all(0.25 <= backoff.delay(n) <= 4.0 for n in range(1, 20))
