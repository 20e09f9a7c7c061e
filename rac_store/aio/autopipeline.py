"""Auto-pipelining of ``add_ack``: acks submitted while a round trip is in flight share the next.

Each caller gets a future of its own. Submitted acks wait in a queue; a
dispatcher takes up to ``max_batch`` of them, merges them into one
``add_acks.lua`` call per shard (:func:`rac_store.acks.merge_by_shard`) and
sends those calls in one pipelined round trip. While that trip is in flight,
new acks queue up and go together in the next one.

Rules (see docs/async.md):

* Validation happens before an ack is queued, so a bad ack fails only its caller.
* An error reply fails the callers of that shard's call only; a lost connection
  (after the bounded retries) fails the callers of that round trip only.
* NOSCRIPT (e.g. after ``SCRIPT FLUSH``) re-sends the calls that got it with the
  script's text (:meth:`rac_store.aio.sending.AsyncSender.round_trip`); acks are
  idempotent, so re-sending is safe.
* Once queued, an ack is sent even if its caller is cancelled; the outcome is
  dropped. Only ``flush`` (and ``aclose``) wait for queued acks.
* On a Redis Cluster (``redis.asyncio.cluster.RedisCluster``) the merged calls of a
  trip, one per shard, go out concurrently as separate EVALSHAs through the cluster
  client (redis-py refuses scripts in cluster pipelines); each is retried on its own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis
from redis.exceptions import RedisClusterException

from ..acks import AckGroup, CallSettings, MergedCall, merge_by_shard
from ..core import parse_outcomes
from ..errors import InvalidInputError, RACStoreError, UnsupportedServerError, map_redis_error
from ..models import AckOutcome
from ..sending import RedisFailure
from .sending import AsyncSender, resend

DEFAULT_MAX_BATCH = 512
"""Most acks in one round trip."""

_Entry = tuple[AckGroup, "asyncio.Future[AckOutcome]"]


class AckPipeline:
    """Coalesces the single acks of one store into shared round trips."""

    def __init__(
        self,
        sender: AsyncSender,
        client: Any,
        settings: CallSettings,
        before_send: Callable[[], Awaitable[None]],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_in_flight: int = 2,
    ) -> None:
        for name, value in (("max_batch", max_batch), ("max_in_flight", max_in_flight)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive int: {value!r}")
        pool = getattr(client, "connection_pool", None)
        if not sender.cluster and not callable(getattr(pool, "get_connection", None)):
            raise UnsupportedServerError(
                f"auto-pipelining needs a client with a connection pool (redis.asyncio.Redis)"
                f" or a RedisCluster, not {type(client).__name__}: pass autopipeline=False"
            )
        self._sender = sender
        self._settings = settings
        self._before_send = before_send
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._queue: deque[_Entry] = deque()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._scheduled = False
        self._orphans = 0
        self._first_orphan: BaseException | None = None
        self.round_trips = 0
        """Round trips sent so far (NOSCRIPT re-sends and retries not counted)."""

    def submit(self, group: AckGroup) -> asyncio.Future[AckOutcome]:
        """Queue one validated ack (a group of one); the future resolves to its outcome.

        Must be called from the event loop's thread. The ack is sent even if the
        future is cancelled afterwards.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AckOutcome] = loop.create_future()
        self._queue.append((group, future))
        if not self._scheduled and len(self._in_flight) < self._max_in_flight:
            # Send after the callbacks already queued in this loop iteration ran,
            # so that acks submitted together leave together.
            self._scheduled = True
            loop.call_soon(self._dispatch_soon)
        return future

    async def flush(self) -> None:
        """Wait until every ack queued so far has been sent and answered.

        Raises RACStoreError when acks of cancelled callers failed since the last
        flush: nobody else is left to hear of it.
        """
        while self._queue or self._in_flight:
            if self._in_flight:
                await asyncio.wait(set(self._in_flight))
            else:
                await asyncio.sleep(0)
        if self._orphans:
            count, first = self._orphans, self._first_orphan
            self._orphans, self._first_orphan = 0, None
            raise RACStoreError(
                f"add_ack: {count} ack(s) of cancelled callers were not recorded;"
                f" the first error: {first}"
            ) from first

    @property
    def queued(self) -> int:
        """Acks waiting for a round trip."""
        return len(self._queue)

    # -- dispatch ---------------------------------------------------------------------
    def _dispatch_soon(self) -> None:
        self._scheduled = False
        self._start_batches()

    def _start_batches(self) -> None:
        queue = self._queue
        while queue and len(self._in_flight) < self._max_in_flight:
            batch = [queue.popleft() for _ in range(min(len(queue), self._max_batch))]
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        # Acks queued while this trip was in flight (including those of callers
        # it just answered) go together in the next one.
        self._start_batches()

    # -- one round trip ------------------------------------------------------------------
    async def _send(self, batch: list[_Entry]) -> None:
        """Send ``batch`` and settle every caller's future; never raises but cancellation."""
        try:
            await self._before_send()
            merged = merge_by_shard([group for group, _ in batch], self._settings)
            self.round_trips += 1
            replies = await self._execute(merged)
        except asyncio.CancelledError as exc:
            self._fail(batch, range(len(batch)), exc)
            raise
        except Exception as exc:
            self._fail(batch, range(len(batch)), exc)
            return
        for part, reply in zip(merged, replies, strict=True):
            if isinstance(reply, Exception):
                self._fail(batch, part.owners, reply)
                continue
            outcomes = _outcomes(reply, len(part.owners))
            if outcomes is None:
                self._fail(batch, part.owners, RACStoreError(f"add_ack: bad reply {reply!r:.80}"))
                continue
            for owner, outcome in zip(part.owners, outcomes, strict=True):
                future = batch[owner][1]
                if not future.done():
                    future.set_result(outcome)

    def _fail(
        self, batch: Sequence[_Entry], owners: Sequence[int] | range, exc: BaseException
    ) -> None:
        """Settle the futures of ``owners`` with the error (mapped per caller).

        A cancelled caller cannot hear of it: its error is kept for ``flush``.
        """
        for owner in dict.fromkeys(owners):
            future = batch[owner][1]
            if future.cancelled():
                self._orphans += 1
                self._first_orphan = self._first_orphan or _caller_error(exc)
            elif not future.done():
                future.set_exception(_caller_error(exc))

    async def _execute(self, merged: Sequence[MergedCall]) -> list[Any]:
        """One reply (or error reply) per merged call, re-sent as the retry policy allows.

        On a Redis Cluster the merged calls (one per shard, so one slot each) go
        out concurrently, each re-sent on its own: a slot that moves delays only
        its own shard's callers. The reply, or the error once the policy gives
        up, is returned as a value.
        """
        sender = self._sender
        if sender.cluster:
            return list(await asyncio.gather(*(self._send_alone(m) for m in merged)))
        calls = [m.call for m in merged]
        return await resend(lambda: sender.round_trip(calls), sender.retrier(client_resends=0))

    async def _send_alone(self, merged: MergedCall) -> Any:
        try:
            return await resend(
                lambda: self._sender.send_script(merged.call), self._sender.retrier()
            )
        except RedisFailure as exc:
            return exc


def _outcomes(reply: Any, count: int) -> list[AckOutcome] | None:
    """The outcomes of one merged call, or None when the reply is not ``count`` outcomes."""
    try:
        outcomes = parse_outcomes(reply)
    except (TypeError, IndexError):
        return None
    return outcomes if len(outcomes) == count else None


def _caller_error(exc: BaseException) -> BaseException:
    """The error one caller sees: a typed store error chained to the Redis error."""
    if isinstance(exc, redis.RedisError | RedisClusterException):
        error = map_redis_error(exc, "add_ack")
    elif isinstance(exc, asyncio.CancelledError):
        error = RACStoreError("add_ack: the round trip was cancelled before its reply")
    else:
        return exc
    error.__cause__ = exc
    return error
