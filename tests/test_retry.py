"""The retry decisions of one call (sans-I/O): what is re-sent, how often, for how long."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis.exceptions as rexc

from rac_store import create_domain_ack, create_run_expectations
from rac_store.errors import (
    InvalidInputError,
    StoreUnavailableError,
    map_redis_error,
    transport_fault,
)
from rac_store.retry import RetryPolicy
from rac_store.testing import embedded_store

from .support.proxy import swap_client


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lost_connections_are_resent_attempts_minus_one_times() -> None:
    retrier = RetryPolicy(attempts=4, base_delay=0.05, max_delay=1.0, jitter=0).retrier()
    delays = [retrier.delay_after(rexc.ConnectionError("gone")) for _ in range(4)]
    assert delays == [0.05, 0.1, 0.2, None]


def test_jitter_shortens_each_pause_by_up_to_its_share() -> None:
    policy = RetryPolicy(attempts=4, base_delay=0.05, max_delay=1.0, jitter=0.5)
    longest = policy.retrier(rng=lambda: 0.0)
    shortest = policy.retrier(rng=lambda: 1.0)
    lost = rexc.ConnectionError("gone")
    assert [longest.delay_after(lost) for _ in range(3)] == [0.05, 0.1, 0.2]
    assert [shortest.delay_after(lost) for _ in range(3)] == pytest.approx([0.025, 0.05, 0.1])
    spread = {RetryPolicy().retrier().delay_after(lost) for _ in range(50)}
    assert len(spread) > 40 and all(0.025 <= d <= 0.05 for d in spread)  # type: ignore[operator]


@pytest.mark.parametrize(("client_resends", "store_sends"), [(0, 4), (1, 2), (2, 1), (10, 1)])
def test_a_client_that_resends_by_itself_spends_the_same_budget(
    client_resends: int, store_sends: int
) -> None:
    """attempts counts every send: the store re-sends less when its client re-sends too."""
    retrier = RetryPolicy(attempts=4).retrier(client_resends=client_resends)
    resends = 0
    while retrier.delay_after(rexc.TimeoutError("timed out")) is not None:
        resends += 1
    assert resends + 1 == store_sends


def test_worst_case_counts_every_send_and_the_longest_pauses() -> None:
    policy = RetryPolicy(attempts=4, base_delay=0.05, max_delay=1.0)
    assert policy.worst_case(send_timeout=2.0) == pytest.approx(4 * 2.0 + 0.05 + 0.1 + 0.2)
    assert RetryPolicy(attempts=1).worst_case(5.0) == 5.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"attempts": 0}, "attempts must be 1..100"),
        ({"attempts": 101}, "attempts must be 1..100"),
        ({"attempts": 2.0}, "attempts must be an int"),
        ({"attempts": True}, "attempts must be an int"),
        ({"base_delay": -1}, "base_delay must be finite and >= 0"),
        ({"base_delay": float("nan")}, "base_delay must be finite"),
        ({"base_delay": float("inf")}, "base_delay must be finite"),
        ({"base_delay": "0.1"}, "base_delay must be a number"),
        ({"base_delay": 2.0, "max_delay": 1.0}, "max_delay must be finite and >= 2.0"),
        ({"max_delay": float("inf")}, "max_delay must be finite"),
        ({"busy_timeout": -0.5}, "busy_timeout must be finite and >= 0"),
        ({"busy_timeout": None}, "busy_timeout must be a number"),
        ({"jitter": 1.5}, "jitter must be finite and 0.0..1.0"),
        ({"jitter": -0.1}, "jitter must be finite and 0.0..1.0"),
    ],
)
def test_hostile_policies_are_refused_when_made(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        RetryPolicy(**fields)


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
    retrier = RetryPolicy(base_delay=0.1, max_delay=0.4, busy_timeout=1.0, jitter=0).retrier(clock)
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
    assert RetryPolicy(jitter=0).retrier().delay_after(lost) == 0.05


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
