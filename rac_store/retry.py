"""The retry policy every store shares: which failures are re-sent, when, and for how long.

Sans-I/O: a :class:`Retrier` only decides; the sync store sleeps and the
asyncio store awaits the delay it returns. The sync store, the asyncio store
and its auto-pipeline all decide with the same policy, so a call makes the same
number of sends, with the same pauses, whichever of them sends it
(docs/reliability.md, "Retries").
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import InvalidInputError, is_retryable, was_not_executed

MAX_ATTEMPTS = 100
"""Most sends of one call a policy may allow (a bound on how long a caller can wait)."""


def _check_number(name: str, value: object, low: float, high: float = math.inf) -> float:
    """``value`` as a finite number in ``low..high``; InvalidInputError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"RetryPolicy.{name} must be a number, got {value!r:.80}")
    if not math.isfinite(value) or not low <= value <= high:
        bounds = f"{low}..{high}" if math.isfinite(high) else f">= {low}"
        raise InvalidInputError(f"RetryPolicy.{name} must be finite and {bounds}: {value!r}")
    return float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter for lost connections, timeouts and refusals.

    A call is sent at most ``attempts`` times when its connection is lost or it
    times out — every send counts, those a redis-py client makes by itself
    included (see :meth:`retrier`); this is safe only because every script is
    idempotent: a re-sent call ends in the same state as one that ran once.
    The pause before the i-th re-send is ``min(max_delay, base_delay * 2**i)``,
    shortened by up to ``jitter`` of itself at random so that many clients that
    lost one server do not come back in step. Replies that say the call did not
    run at all (``TRYAGAIN`` and ``CLUSTERDOWN`` while a Redis Cluster moves a slot
    or completes a failover; see :data:`rac_store.errors.NOT_EXECUTED_ERRORS`; ``BUSY``
    while the server runs a script past ``busy-reply-threshold``) are re-sent for up to
    ``busy_timeout`` seconds, then reach the caller as StoreUnavailableError.

    Every field is checked here (InvalidInputError): ``attempts`` an int in
    1..100, delays finite and >= 0 with ``max_delay >= base_delay``,
    ``busy_timeout`` finite and >= 0, ``jitter`` in 0..1.
    """

    attempts: int = 4
    base_delay: float = 0.05
    max_delay: float = 1.0
    busy_timeout: float = 10.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        attempts = self.attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise InvalidInputError(f"RetryPolicy.attempts must be an int, got {attempts!r:.80}")
        if not 1 <= attempts <= MAX_ATTEMPTS:
            raise InvalidInputError(f"RetryPolicy.attempts must be 1..{MAX_ATTEMPTS}: {attempts}")
        base = _check_number("base_delay", self.base_delay, 0.0)
        _check_number("max_delay", self.max_delay, base)
        _check_number("busy_timeout", self.busy_timeout, 0.0)
        _check_number("jitter", self.jitter, 0.0, 1.0)

    def delays(self) -> list[float]:
        """The longest pause before each re-send (one fewer than ``attempts``); jitter
        only shortens them."""
        return [min(self.max_delay, self.base_delay * 2**i) for i in range(self.attempts - 1)]

    def worst_case(self, send_timeout: float) -> float:
        """The longest a caller waits for a server that never answers, in seconds.

        ``send_timeout`` is how long one send can take before it fails (the client's
        connect timeout plus its socket timeout). Every send counts once: a client
        that re-sends by itself does so inside the same ``attempts`` budget.
        """
        return self.attempts * send_timeout + sum(self.delays())

    def retrier(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        client_resends: int = 0,
        rng: Callable[[], float] = random.random,
    ) -> Retrier:
        """The retry decisions of one call, starting now.

        ``client_resends``: how many times the client itself re-sends a command
        whose connection was lost (a redis-py ``Retry``); each of the store's sends
        then costs ``1 + client_resends`` of the ``attempts`` budget.
        """
        return Retrier(self, clock, client_resends, rng)


class Retrier:
    """Decides, error after error of one call, whether and when to re-send it."""

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Callable[[], float],
        client_resends: int = 0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng
        # Sends of the store, each worth 1 + client_resends sends of the budget
        # (at least one send, even when the client alone re-sends more often).
        store_sends = max(1, policy.attempts // (1 + max(0, client_resends)))
        self._delays = policy.delays()[: store_sends - 1]
        self._lost = 0
        self._refused = 0
        self._refused_since: float | None = None

    def _jittered(self, delay: float) -> float:
        return delay * (1.0 - self._policy.jitter * self._rng())

    def delay_after(self, exc: BaseException) -> float | None:
        """The pause before re-sending after ``exc``; None when ``exc`` must reach the caller."""
        policy = self._policy
        if is_retryable(exc):
            if self._lost >= len(self._delays):
                return None
            self._lost += 1
            return self._jittered(self._delays[self._lost - 1])
        if not was_not_executed(exc):
            return None
        now = self._clock()
        if self._refused_since is None:
            self._refused_since = now
        left = policy.busy_timeout - (now - self._refused_since)
        if left <= 0:
            return None
        delay = min(policy.max_delay, policy.base_delay * 2.0**self._refused)
        self._refused += 1
        return min(self._jittered(delay), left)


@dataclass(frozen=True)
class Backoff:
    """Pauses of a long-running loop between tries: exponential from ``base`` up to ``cap``.

    The n-th pause is drawn uniformly in [d/2, d] where d = min(cap, base * 2^(n-1))
    ("equal jitter"): clients that lost one server together do not come back together.
    """

    base: float = 0.5
    cap: float = 30.0

    def delay(self, failures: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds to wait after the ``failures``-th failed try in a row."""
        ceiling = min(self.cap, self.base * 2 ** max(0, failures - 1))
        return rng(ceiling / 2, ceiling)
