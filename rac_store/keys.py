"""Key layout: which Redis keys hold a run, and which shard a run lives on.

Every key of one run, the pending index of its shard, the shard's findings
stream and its store epoch share the hash tag ``{shard}``, so one script
touches one Redis Cluster slot.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import NamedTuple

from .errors import InvalidInputError

LAYOUT_VERSION = "3"
"""Bumped when the key layout changes; recorded in ``P:meta`` and checked at start-up."""

MAX_SHARDS = 16384
MAX_PREFIX_CHARS = 64
PREFIX_FORBIDDEN = frozenset("{}|*?[]\\")
"""Characters no prefix may hold: hash-tag braces, the field separator, and the glob
characters of Redis key patterns (an ACL ``~<prefix>:...`` pattern must match the
prefix literally; docs/security.md)."""


def check_prefix(prefix: object) -> str:
    """``prefix`` when it can name a store; InvalidInputError otherwise.

    1..64 printable characters, none of them whitespace, braces, ``|`` or a glob
    character (``* ? [ ] \\``). A ``:`` is allowed: ``rac`` and ``rac:tenant`` are
    two stores whose keys never meet (``rac:{s}:...`` / ``rac:meta`` against
    ``rac:tenant:{s}:...`` / ``rac:tenant:meta``), and their ACL patterns
    (:mod:`rac_store.acl`) do not overlap either.
    """
    if (
        not isinstance(prefix, str)
        or not 0 < len(prefix) <= MAX_PREFIX_CHARS
        or not prefix.isprintable()
        or any(c.isspace() or c in PREFIX_FORBIDDEN for c in prefix)
    ):
        raise InvalidInputError(
            f"prefix must be 1..{MAX_PREFIX_CHARS} printable characters without whitespace,"
            f" braces, '|' or glob characters (* ? [ ] \\): {prefix!r:.80}"
        )
    return prefix


def check_shards(shards: object) -> int:
    """``shards`` when it is a power of two in 1..MAX_SHARDS; InvalidInputError otherwise."""
    if isinstance(shards, bool) or not isinstance(shards, int):
        raise InvalidInputError(f"shards must be an int, got {type(shards).__name__}")
    if shards < 1 or shards > MAX_SHARDS or shards & (shards - 1):
        raise InvalidInputError(f"shards must be a power of two in 1..{MAX_SHARDS}: {shards}")
    return shards


class RunKeys(NamedTuple):
    """The keys one run's scripts take, in script order."""

    pending: str
    """The shard's pending index (zset)."""
    exp: str
    """The run's expectations (hash)."""
    st: str
    """The run's statuses (hash)."""
    due: str
    """The run's PENDING expectations by due time (zset)."""
    acks: str
    """The run's encoded acks in arrival order (list)."""
    ackid: str
    """The ack ids the run has seen (hash)."""
    findings: str
    """The findings stream of the run's shard."""
    epoch: str
    """The store epoch of the run's shard (reset detection; every write script checks it)."""

    @property
    def run_keys(self) -> tuple[str, ...]:
        """The run's own five keys, in script order (exp, st, due, acks, ackid)."""
        return (self.exp, self.st, self.due, self.acks, self.ackid)


class KeySpace:
    """Names of every key a store with ``prefix`` and ``shards`` uses."""

    def __init__(self, prefix: str, shards: int) -> None:
        self.prefix = check_prefix(prefix)
        self.shards = check_shards(shards)
        self.meta = f"{prefix}:meta"
        self._mask = shards - 1
        self.for_run = lru_cache(maxsize=4096)(self._build_run_keys)

    def shard_of(self, run_id: str) -> int:
        """The shard of a run: crc32 of its canonical id, modulo the shard count."""
        return zlib.crc32(run_id.encode()) & self._mask

    def pending(self, shard: int) -> str:
        """The pending index of one shard."""
        return f"{self.prefix}:{{{shard}}}:pending"

    def all_pending(self) -> list[str]:
        """The pending index of every shard, in shard order."""
        return [self.pending(shard) for shard in range(self.shards)]

    def findings(self, shard: int) -> str:
        """The findings stream of one shard."""
        return f"{self.prefix}:{{{shard}}}:findings"

    def all_findings(self) -> list[str]:
        """The findings stream of every shard, in shard order."""
        return [self.findings(shard) for shard in range(self.shards)]

    def dead_letters(self, shard: int) -> str:
        """The dead-letter stream of one shard (findings a consumer could not deliver)."""
        return f"{self.prefix}:{{{shard}}}:findings:dead"

    def epoch(self, shard: int) -> str:
        """The store epoch key of one shard (a string, made when a store opens)."""
        return f"{self.prefix}:{{{shard}}}:epoch"

    def all_epochs(self) -> list[str]:
        """The store epoch key of every shard, in shard order."""
        return [self.epoch(shard) for shard in range(self.shards)]

    def _build_run_keys(self, run_id: str) -> RunKeys:
        base = f"{self.prefix}:{{{self.shard_of(run_id)}}}:"
        return RunKeys(
            base + "pending",
            f"{base}exp:{run_id}",
            f"{base}st:{run_id}",
            f"{base}due:{run_id}",
            f"{base}acks:{run_id}",
            f"{base}ackid:{run_id}",
            base + "findings",
            base + "epoch",
        )
