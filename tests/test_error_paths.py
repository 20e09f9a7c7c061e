"""Error paths that matter and were not pinned: WaitAof input, the ACL prefix guard, the async
re-send's re-raise and exhaustion, malformed auto-pipeline replies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from rac_store import AckOutcome, InvalidInputError, RetryPolicy
from rac_store.acl import inspector_rules, worker_rules
from rac_store.aio.autopipeline import _outcomes
from rac_store.aio.sending import resend
from rac_store.errors import DurabilityNotConfirmedError
from rac_store.wait_aof import WaitAof, as_wait_aof


# -- WaitAof ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"local": -1}, "WaitAof.local must be an int >= 0: -1"),
        ({"replicas": True}, "WaitAof.replicas must be an int >= 0: True"),
        ({"timeout_ms": 1.5}, "WaitAof.timeout_ms must be an int >= 0: 1.5"),
        ({"local": 2}, "WaitAof.local must be 0 or 1: 2"),
        ({"local": 0, "replicas": 0}, "WaitAof with local=0 and replicas=0 waits for nothing"),
    ],
)
def test_wait_aof_refuses_bad_settings(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        WaitAof(**options)
    assert str(caught.value) == message


def test_wait_aof_choices_and_its_reply_check() -> None:
    assert as_wait_aof(True) == WaitAof() and as_wait_aof(False) is None
    assert as_wait_aof(None) is None
    custom = WaitAof(local=0, replicas=2, timeout_ms=5)
    assert as_wait_aof(custom) is custom
    assert custom.command() == ("WAITAOF", 0, 2, 5)
    with pytest.raises(InvalidInputError, match="wait_aof must be a bool or a WaitAof"):
        as_wait_aof("yes")  # type: ignore[arg-type]
    custom.check([0, 2], "add_ack")  # enough: no error
    with pytest.raises(DurabilityNotConfirmedError) as caught:
        custom.check([1, 1], "add_ack")
    assert str(caught.value) == (
        "add_ack: applied, but WAITAOF confirmed local=1/0 replicas=1/2 within 5 ms;"
        " re-sending is safe"
    )


# -- ACL rules ----------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["", "ra*", "r?c", "[r]ac", "r\\ac", "r ac"])
def test_acl_rules_refuse_a_prefix_that_is_a_glob(prefix: str) -> None:
    """A glob in a prefix would grant keys of other stores: refused, for both roles."""
    for rules in (worker_rules, inspector_rules):
        with pytest.raises(ValueError, match=r"prefix must be 1\.\.64 printable characters"):
            rules("rac", prefix)


def test_acl_rules_grant_waitaof_only_when_asked() -> None:
    assert "+waitaof" not in worker_rules("rac")
    assert "+waitaof" in worker_rules("rac", wait_aof=True)
    assert worker_rules()[:3] == ["resetkeys", "~rac:meta", "~rac:{*}:*"]  # the default prefix


# -- the async re-send ----------------------------------------------------------------------
def counting(errors: list[BaseException | None]) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """A send that raises each of ``errors`` in turn (None: answers "ok"); and its call count."""
    calls = [0]

    async def send() -> str:
        error = errors[min(calls[0], len(errors) - 1)]
        calls[0] += 1
        if error is not None:
            raise error
        return "ok"

    return send, calls


FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.001, busy_timeout=0.05)


@pytest.mark.parametrize(
    ("error", "sends"),
    [
        (redis.ConnectionError("lost"), 3),  # re-sent until the policy's attempts are spent
        (redis.ResponseError("RAC_BADARG ttl_ms"), 1),  # an error reply: raised at once
        (AttributeError("not a transport fault"), 1),  # a bug, not a lost connection
    ],
    ids=["lost connection", "error reply", "bug"],
)
def test_resend_raises_the_last_error_as_it_is(error: BaseException, sends: int) -> None:
    send, calls = counting([error])
    with pytest.raises(type(error)) as caught:
        asyncio.run(resend(send, FAST.retrier()))
    assert caught.value is error and calls == [sends]


def test_resend_succeeds_after_lost_connections() -> None:
    send, calls = counting([redis.ConnectionError("a"), redis.TimeoutError("b"), None])
    assert asyncio.run(resend(send, FAST.retrier())) == "ok" and calls == [3]


def test_resend_bounds_not_executed_refusals_by_busy_timeout() -> None:
    """TRYAGAIN means the call did not run: re-sent until ``busy_timeout``, then raised."""
    busy = redis.exceptions.TryAgainError("TRYAGAIN slot moving")
    send, calls = counting([busy])
    with pytest.raises(redis.exceptions.TryAgainError):
        asyncio.run(resend(send, FAST.retrier()))
    assert calls[0] > FAST.attempts  # not bounded by the attempts of lost connections


# -- malformed auto-pipeline replies ----------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "count", "expected"),
    [
        ([0, 3], 2, [AckOutcome.RECORDED, AckOutcome.LATE]),
        ([0], 2, None),  # fewer outcomes than callers
        ([0, 1, 2], 2, None),  # more
        ([7], 1, None),  # no such outcome
        (None, 1, None),  # not a list at all
        (b"OK", 2, None),
    ],
)
def test_a_merged_calls_reply_is_its_callers_outcomes_or_nothing(
    reply: Any, count: int, expected: list[AckOutcome] | None
) -> None:
    assert _outcomes(reply, count) == expected
