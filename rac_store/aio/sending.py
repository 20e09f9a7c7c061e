"""How an asyncio store sends its calls: the async twin of :mod:`rac_store.sending`.

Same rules: ``EVALSHA``, then ``EVAL`` with the text on NOSCRIPT; re-sends as
the :class:`~rac_store.retry.RetryPolicy` allows; Redis errors mapped to typed
errors. :meth:`AsyncSender.round_trip` sends many script calls back to back on
one connection for the auto-pipeline (:mod:`rac_store.aio.autopipeline`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import redis
from redis.exceptions import NoScriptError

from ..cluster import is_cluster
from ..core import Call, CommandCall
from ..direct import utf8_packer
from ..errors import is_busy, map_redis_error, transport_fault
from ..retry import Retrier, RetryPolicy
from ..scripts import LoadedScript, Script, ScriptCall
from ..sending import RedisFailure, SenderBase

T = TypeVar("T")


async def resend(send: Callable[[], Awaitable[T]], retrier: Retrier) -> T:
    """Await ``send()``, re-sent as ``retrier`` decides; the last Redis error is raised as is.

    A torn-down asyncio transport (see :func:`rac_store.errors.transport_fault`)
    counts as a lost connection.
    """
    while True:
        try:
            return await send()
        except (*RedisFailure, AttributeError, TypeError) as raw:
            exc = transport_fault(raw) or raw
            if not isinstance(exc, RedisFailure):
                raise
            delay = retrier.delay_after(exc)
            if delay is None:
                if exc is raw:
                    raise
                raise exc from raw
            await asyncio.sleep(delay)


class AsyncSender(SenderBase):
    """Sends the calls of one asyncio store on its client."""

    def __init__(
        self,
        client: Any,
        scripts: Mapping[Script, LoadedScript],
        retry: RetryPolicy,
        *,
        read_only: bool = False,
        client_resends: int | None = None,
    ) -> None:
        super().__init__(client, scripts, retry, read_only, client_resends)
        self.cluster = is_cluster(client)
        self._pack = None if self.cluster else utf8_packer(client)

    async def execute(self, call: Call) -> Any:
        """The raw reply of ``call`` (a list of replies for plain commands)."""
        self._guard.check(call)
        if isinstance(call, CommandCall):
            return await self.retrying(call.operation, lambda: self._pipeline(call))
        return await self.retrying(call.operation, lambda: self.send_script(call))

    async def retrying(self, operation: str, send: Callable[[], Awaitable[T]]) -> T:
        """Await ``send()``, re-sent as the retry policy allows; map Redis errors."""
        try:
            return await resend(send, self.retrier())
        except RedisFailure as exc:
            raise map_redis_error(exc, operation) from exc

    async def send_script(self, call: ScriptCall) -> Any:
        """One script call: EVALSHA, and EVAL with the text on NOSCRIPT (no retries)."""
        loaded = self._scripts[call.script]
        try:
            return await self._client.execute_command(*loaded.command(call))
        except NoScriptError:
            return await self._client.execute_command(*loaded.command(call, by_body=True))

    async def _pipeline(self, call: CommandCall) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for command in call.commands:
            pipe.execute_command(*command)
        return list(await pipe.execute())

    async def round_trip(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """Script calls back to back on one connection, one reply (or error reply) each.

        Sent straight on a connection, so the client's own re-sends do not apply:
        retry it with ``retrier(client_resends=0)``.

        Calls answered NOSCRIPT go once more with the script's text; a BUSY reply
        (the server runs a script past busy-reply-threshold) is raised, for the
        caller's retrier to re-send the whole trip (refused calls never ran). Any other
        failure (lost connection, cancellation) closes the connection, so that a
        half-read reply never reaches another command, and is raised.
        """
        replies = await self._send_back_to_back(calls, by_body=False)
        busy = next((r for r in replies if isinstance(r, Exception) and is_busy(r)), None)
        if busy is not None:  # the server runs someone's script: the trip is re-sent whole
            raise busy  # (a call of it that did run reports its first outcome again)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            again = await self._send_back_to_back([calls[i] for i in missing], by_body=True)
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    async def _send_back_to_back(self, calls: Sequence[ScriptCall], by_body: bool) -> list[Any]:
        commands = [self._scripts[call.script].command(call, by_body) for call in calls]
        pool = self._client.connection_pool
        connection = await pool.get_connection()
        try:
            if self._pack is not None:
                await connection.send_packed_command(b"".join(map(self._pack, commands)))
            else:
                await connection.send_packed_command(connection.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)
        return replies
