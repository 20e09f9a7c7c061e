"""The environment (``AOS_MODE``, ``RAC_REDIS_URL``, ...) and the storage mode it chooses.

=====================================  ==================================
Situation                              Mode
=====================================  ==================================
a Redis client is passed               REDIS (MEMORY for a fakeredis one)
``RAC_REDIS_URL`` is set (and
``AUDIT_REDIS_ENABLED`` is not false)  REDIS, connected to that URL
``AOS_MODE`` test/prod and
``RAC_ENABLED`` true (the default)     :class:`RACDurabilityError`
otherwise (``AOS_MODE=local``)         MEMORY: embedded, in-process
=====================================  ==================================
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .embedded import is_embedded
from .errors import RACDurabilityError
from .models import TextEnum

AOS_MODES = ("local", "test", "prod")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class StoreDurabilityMode(TextEnum):
    """Where the store keeps its data."""

    MEMORY = "MEMORY"
    """Embedded in-process server: same scripts, nothing survives the process."""
    REDIS = "REDIS"
    """A Redis server: durable, shared by every process."""


def env_flag(name: str, default: bool) -> bool:
    """A true/false environment variable; an unreadable value is an error."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RACDurabilityError(f"{name}={raw!r} is not true or false")


def aos_mode() -> str:
    """``AOS_MODE``: local (default), test or prod."""
    mode = os.environ.get("AOS_MODE", "local").strip().lower() or "local"
    if mode not in AOS_MODES:
        raise RACDurabilityError(f"AOS_MODE={mode!r} must be one of {', '.join(AOS_MODES)}")
    return mode


def redis_url_from_env() -> str | None:
    """``RAC_REDIS_URL``, unless ``AUDIT_REDIS_ENABLED`` is false."""
    url = os.environ.get("RAC_REDIS_URL", "").strip()
    if not url or not env_flag("AUDIT_REDIS_ENABLED", True):
        return None
    return url


def _determine_durability_mode(redis_client: object) -> StoreDurabilityMode:
    """The durability mode for a store given ``redis_client`` (or None) and the environment.

    Raises RACDurabilityError when AOS_MODE is test or prod, RAC is enabled and no
    Redis is configured.
    """
    if redis_client is not None:
        # An explicit embedded client is an explicit choice (users' unit tests).
        return (
            StoreDurabilityMode.MEMORY if is_embedded(redis_client) else StoreDurabilityMode.REDIS
        )
    if redis_url_from_env() is not None:
        return StoreDurabilityMode.REDIS
    mode = aos_mode()
    if mode != "local" and env_flag("RAC_ENABLED", True):
        raise RACDurabilityError(
            f"AOS_MODE={mode} with RAC_ENABLED requires Redis: set RAC_REDIS_URL "
            "(e.g. redis://localhost:6379/0) or pass redis_client=...; "
            "the in-memory store is only allowed with AOS_MODE=local"
        )
    return StoreDurabilityMode.MEMORY


def choose_client(
    redis_client: Any, connect: Callable[[str], Any], embedded: Callable[[], Any]
) -> tuple[Any, StoreDurabilityMode]:
    """The client a store uses and its durability mode, by the rules above.

    ``connect(url)`` makes a client of ``RAC_REDIS_URL``; ``embedded()`` makes an
    embedded one. Both stores pass their own (sync or asyncio) factories.
    """
    mode = _determine_durability_mode(redis_client)
    if redis_client is None:
        url = redis_url_from_env()
        redis_client = connect(url) if url else embedded()
    return redis_client, mode
