"""Opt-in durability: wait for the AOF after each write (``WAITAOF``, Redis >= 7.2).

Sans-I/O: a store sends :meth:`WaitAof.command` on the *same connection*,
right after the write script (the wait covers that connection's last write),
and hands the reply to :meth:`WaitAof.check`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import DurabilityNotConfirmedError, InvalidInputError


@dataclass(frozen=True)
class WaitAof:
    """After every write, wait until ``local`` (0 or 1) and ``replicas`` AOFs hold it.

    ``timeout_ms`` bounds the wait (0 waits forever). A wait that ends short
    raises :class:`~rac_store.errors.DurabilityNotConfirmedError`: the write was
    applied, its durability is not confirmed, and re-sending is safe.
    """

    local: int = 1
    replicas: int = 0
    timeout_ms: int = 1000

    def __post_init__(self) -> None:
        for name in ("local", "replicas", "timeout_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInputError(f"WaitAof.{name} must be an int >= 0: {value!r}")
        if self.local > 1:
            raise InvalidInputError(f"WaitAof.local must be 0 or 1: {self.local}")
        if self.local == 0 and self.replicas == 0:
            raise InvalidInputError("WaitAof with local=0 and replicas=0 waits for nothing")

    def command(self) -> tuple[str | int, ...]:
        """The ``WAITAOF`` command to send after a write, on the same connection."""
        return ("WAITAOF", self.local, self.replicas, self.timeout_ms)

    def check(self, reply: Sequence[Any], operation: str) -> None:
        """Raise unless the reply ``[local, replicas]`` reaches what was asked."""
        local, replicas = int(reply[0]), int(reply[1])
        if local < self.local or replicas < self.replicas:
            raise DurabilityNotConfirmedError(
                f"{operation}: applied, but WAITAOF confirmed local={local}/{self.local}"
                f" replicas={replicas}/{self.replicas} within {self.timeout_ms} ms;"
                " re-sending is safe"
            )


def as_wait_aof(value: bool | WaitAof | None) -> WaitAof | None:
    """``True`` -> the default :class:`WaitAof`; ``False``/``None`` -> no waiting."""
    if isinstance(value, WaitAof):
        return value
    if value is True:
        return WaitAof()
    if value is False or value is None:
        return None
    raise InvalidInputError(f"wait_aof must be a bool or a WaitAof, got {value!r:.80}")
