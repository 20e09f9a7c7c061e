"""The retry policy every store shares: which failures are re-sent, and when.

Sans-I/O: a :class:`Retrier` only decides; the sync store sleeps and the
asyncio store awaits the delay it returns.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import is_retryable, was_not_executed


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for lost connections, timeouts and refusals.

    Lost connections and timeouts are re-sent at most ``attempts - 1`` times;
    this is safe only because every script is idempotent: a re-sent call ends
    in the same state as one that ran once. Replies that say the call did not
    run at all (``TRYAGAIN`` and ``CLUSTERDOWN`` while a Redis Cluster moves a
    slot or completes a failover; see :data:`rac_store.errors.NOT_EXECUTED_ERRORS`)
    are re-sent for up to ``busy_timeout`` seconds.
    """

    attempts: int = 4
    base_delay: float = 0.05
    max_delay: float = 1.0
    busy_timeout: float = 10.0

    def delays(self) -> list[float]:
        """The pause before each re-send (one fewer than ``attempts``)."""
        return [min(self.max_delay, self.base_delay * 2**i) for i in range(self.attempts - 1)]

    def retrier(self, clock: Callable[[], float] = time.monotonic) -> Retrier:
        """The retry decisions of one call, starting now."""
        return Retrier(self, clock)


class Retrier:
    """Decides, error after error of one call, whether and when to re-send it."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._delays = policy.delays()
        self._lost = 0
        self._refused = 0
        self._refused_since: float | None = None

    def delay_after(self, exc: BaseException) -> float | None:
        """The pause before re-sending after ``exc``; None when ``exc`` must reach the caller."""
        policy = self._policy
        if is_retryable(exc):
            if self._lost >= len(self._delays):
                return None
            self._lost += 1
            return self._delays[self._lost - 1]
        if not was_not_executed(exc):
            return None
        now = self._clock()
        if self._refused_since is None:
            self._refused_since = now
        left = policy.busy_timeout - (now - self._refused_since)
        if left <= 0:
            return None
        delay = min(policy.max_delay, policy.base_delay * 2.0**self._refused, left)
        self._refused += 1
        return delay


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
