"""The asyncio re-send loop, shared by AsyncAuditStore and its autopipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis
from redis.exceptions import RedisClusterException

from .core import RetryPolicy
from .errors import transport_fault

T = TypeVar("T")

RedisFailure = (redis.RedisError, RedisClusterException)
"""What a Redis call can fail with (mapped to a RACStoreError by the callers)."""


async def resend(send: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Await ``send()``, re-sent as ``policy`` allows; the last Redis error is raised as is.

    A torn-down asyncio transport (see :func:`rac_store.errors.transport_fault`)
    counts as a lost connection.
    """
    retrier = policy.retrier()
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
