"""Input checks, run before anything is sent to Redis.

Every check raises :class:`~rac_store.errors.InvalidInputError` with a message
that names the bad value; none of them touches the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any

from .errors import InvalidInputError
from .models import AckStatus, AuditExpectation, AuditStatus, DomainAck

MAX_NAME_BYTES = 128
"""Longest domain or action, in UTF-8 bytes."""
MAX_PAYLOAD_BYTES = 64 * 1024
"""Largest encoded expectation or ack (metadata and texts included)."""
MAX_DEADLINE_MS = 30 * 24 * 3600 * 1000
"""Longest deadline: 30 days."""
MAX_BATCH = 10_000
"""Most expectations or acks in one call."""
MAX_METADATA_DEPTH = 32
"""Deepest nesting of metadata (the metadata dict itself is level 1)."""
MAX_METADATA_ITEMS = MAX_PAYLOAD_BYTES
"""Most values (keys and items, at every level) in one metadata: each encodes to at least a
byte, so more could never fit in MAX_PAYLOAD_BYTES."""
MAX_TTL_SECONDS = 365 * 24 * 3600
"""Longest ``ttl_seconds`` of a store: one year."""
MAX_FINDINGS_MAXLEN = 10_000_000
"""Largest ``findings_maxlen`` (events kept per shard's findings stream)."""
KEY_SEPARATOR = "|"


def bounded_int(value: object, what: str, low: int, high: int) -> int:
    """``value`` when it is an int (not a bool) in ``low..high``; InvalidInputError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be an int, got {value!r:.80}")
    if not low <= value <= high:
        raise InvalidInputError(f"{what} must be in {low:,}..{high:,}: {value:,}")
    return value


def canonical_run_id(run_id: object) -> str:
    """The lower-case hyphenated text of a run id given as UUID or string."""
    if isinstance(run_id, uuid.UUID):
        return _uuid_text(run_id)
    if isinstance(run_id, str):
        return _canonical_text(run_id)
    raise InvalidInputError(f"run_id must be a UUID, got {run_id!r:.80}")


# Formatting or parsing a UUID costs more than all other checks of an ack together,
# and a worker acks the same few runs over and over: remember the recent ones.
_uuid_text = lru_cache(maxsize=4096)(uuid.UUID.__str__)


@lru_cache(maxsize=4096)
def _canonical_text(run_id: str) -> str:
    try:
        return _uuid_text(uuid.UUID(run_id))
    except ValueError:
        raise InvalidInputError(f"run_id must be a UUID, got {run_id!r:.80}") from None


def _name(value: object, what: str) -> str:
    text = value.value if isinstance(value, Enum) else value
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    try:
        size = len(text.encode())
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{what} is not valid Unicode: {text!r:.80}") from exc
    if size == 0 or size > MAX_NAME_BYTES:
        raise InvalidInputError(f"{what} must be 1..{MAX_NAME_BYTES} UTF-8 bytes: {text!r:.80}")
    if KEY_SEPARATOR in text or not text.isprintable():
        raise InvalidInputError(
            f"{what} must not contain {KEY_SEPARATOR!r} or control characters: {text!r:.80}"
        )
    return text


def action_key(domain: object, action: object) -> str:
    """The field name of an expectation in its run: ``"domain|action"``."""
    try:
        return _cached_action_key(domain, action)
    except TypeError:  # unhashable: not a name at all; let the full check say why
        return _action_key(domain, action)


def _action_key(domain: object, action: object) -> str:
    return f"{_name(domain, 'domain')}{KEY_SEPARATOR}{_name(action, 'action')}"


_cached_action_key = lru_cache(maxsize=1024)(_action_key)
"""Workers ack the same few (domain, action) pairs over and over; a valid pair is checked once."""


def _belongs(run_id: str, item_run_id: object, what: str) -> None:
    if not isinstance(item_run_id, uuid.UUID):
        raise InvalidInputError(f"{what}.run_id must be a UUID, got {item_run_id!r:.80}")
    if _uuid_text(item_run_id) != run_id:
        raise InvalidInputError(f"{what}.run_id {item_run_id} is not the run {run_id}")


def _common(item: AuditExpectation | DomainAck, what: str) -> None:
    if not isinstance(item.id, uuid.UUID):
        raise InvalidInputError(f"{what}.id must be a UUID, got {item.id!r:.80}")
    if not isinstance(item.created_at, datetime) or item.created_at.tzinfo is None:
        raise InvalidInputError(f"{what}.created_at must be a timezone-aware datetime")
    metadata = item.metadata
    if not isinstance(metadata, dict) or (
        metadata and not all(isinstance(k, str) for k in metadata)
    ):
        raise InvalidInputError(f"{what}.metadata must be a dict with string keys")
    if metadata:
        check_metadata(metadata, what)


_CONTAINERS = (dict, list, tuple, set, frozenset)
_SCALARS = (str, bytes, bytearray, int, float, type(None), date, time, timedelta, uuid.UUID)
_SCALARS_TOO = (Decimal, Enum)


def check_metadata(metadata: dict[str, Any], what: str) -> None:
    """Bound the depth, the number of values and the text of ``metadata`` before it is encoded.

    The walk is iterative and stops at MAX_METADATA_DEPTH, so metadata that contains
    itself is refused like any too-deep one (never a RecursionError), and a structure
    that repeats one list many times is refused after MAX_METADATA_ITEMS values,
    before the encoder would spend time and memory on it. Values must be plain data:
    dicts, lists, tuples, sets, text, bytes, numbers, booleans, None, dates and times,
    UUIDs, Decimals and Enums. Whatever passes here decodes with at most this depth,
    so reading it back never needs a deep stack (docs/reliability.md).
    """
    stack: list[tuple[Any, int]] = [(metadata, 1)]
    values = 0
    text_size = 0
    while stack:
        value, depth = stack.pop()
        if isinstance(value, _CONTAINERS):
            if depth > MAX_METADATA_DEPTH:
                raise InvalidInputError(
                    f"{what}.metadata is nested deeper than {MAX_METADATA_DEPTH} levels"
                    " (or contains itself)"
                )
            children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            values += len(children)
            if values > MAX_METADATA_ITEMS:
                raise InvalidInputError(
                    f"{what}.metadata holds more than {MAX_METADATA_ITEMS:,} values"
                )
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(value, str | bytes | bytearray):
            text_size += len(value)
            if text_size > MAX_PAYLOAD_BYTES:
                raise InvalidInputError(
                    f"{what}.metadata holds more than {MAX_PAYLOAD_BYTES:,} bytes of text"
                )
        elif not isinstance(value, _SCALARS) and not isinstance(value, _SCALARS_TOO):
            raise InvalidInputError(
                f"{what}.metadata must hold plain data (dict, list, tuple, set, text, bytes,"
                f" numbers, bool, None, dates and times, UUID, Decimal, Enum),"
                f" not {type(value).__name__}"
            )


def _optional_text(value: Any, what: str) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string or None, got {type(value).__name__}")


def check_expectation(run_id: str, exp: object) -> str:
    """Validate an expectation of ``run_id``; return its key."""
    if not isinstance(exp, AuditExpectation):
        raise InvalidInputError(f"expected an AuditExpectation, got {type(exp).__name__}")
    _belongs(run_id, exp.run_id, "expectation")
    deadline = exp.deadline_ms
    if isinstance(deadline, bool) or not isinstance(deadline, int):
        raise InvalidInputError(f"deadline_ms must be an int, got {deadline!r:.80}")
    if not 0 <= deadline <= MAX_DEADLINE_MS:
        raise InvalidInputError(f"deadline_ms must be in 0..{MAX_DEADLINE_MS}: {deadline}")
    if exp.status not in AuditStatus.__members__.values():
        raise InvalidInputError(f"expectation.status must be an AuditStatus: {exp.status!r:.80}")
    _common(exp, "expectation")
    return action_key(exp.domain, exp.action)


def check_ack(run_id: str, ack: object) -> str:
    """Validate an ack of ``run_id``; return the key of the expectation it answers."""
    if not isinstance(ack, DomainAck):
        raise InvalidInputError(f"expected a DomainAck, got {type(ack).__name__}")
    _belongs(run_id, ack.run_id, "ack")
    if not _is_ack_status(ack.status):
        raise InvalidInputError(f"ack.status must be an AckStatus: {ack.status!r:.80}")
    if not isinstance(ack.rolled_back, bool):
        raise InvalidInputError("ack.rolled_back must be a bool")
    if not (ack.result_id is None and ack.error is None and ack.rollback_reason is None):
        _optional_text(ack.result_id, "ack.result_id")
        _optional_text(ack.error, "ack.error")
        _optional_text(ack.rollback_reason, "ack.rollback_reason")
    _common(ack, "ack")
    return action_key(ack.domain, ack.action)


_ACK_STATUSES = frozenset(AckStatus.__members__.values())


def _is_ack_status(status: object) -> bool:
    """An AckStatus member or its value (``"SUCCESS"`` == ``AckStatus.SUCCESS``)."""
    try:
        return status in _ACK_STATUSES
    except TypeError:  # unhashable
        return False


def check_batch(items: object, what: str) -> list[Any]:
    """A list of at most MAX_BATCH items."""
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise InvalidInputError(f"{what} must be a list, got {type(items).__name__}")
    batch = list(items)
    if len(batch) > MAX_BATCH:
        raise InvalidInputError(f"at most {MAX_BATCH} {what} per call, got {len(batch)}")
    return batch


def check_status(status: object) -> AuditStatus:
    """An AuditStatus from a member or its value."""
    try:
        return AuditStatus(status)
    except ValueError:
        raise InvalidInputError(f"status must be an AuditStatus, got {status!r:.80}") from None
