"""MessagePack encoding of expectations and acks, with encoders made once.

Payloads are opaque to Lua: what a script must look at travels as its own
argument. UUIDs are encoded as 16 raw bytes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import InvalidInputError, StoreDataError
from .models import AuditExpectation, DomainAck
from .validation import MAX_PAYLOAD_BYTES

_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
_expectation_decoder = msgspec.msgpack.Decoder(AuditExpectation)
_ack_decoder = msgspec.msgpack.Decoder(DomainAck)


def encode(item: Any) -> bytes:
    """The MessagePack bytes of a model, at most MAX_PAYLOAD_BYTES long."""
    try:
        payload = _encoder.encode(item)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise InvalidInputError(f"{type(item).__name__} cannot be encoded: {exc}") from exc
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidInputError(
            f"encoded {type(item).__name__} is {len(payload)} bytes;"
            f" the limit is {MAX_PAYLOAD_BYTES}"
        )
    return payload


def decode_expectation(payload: bytes) -> AuditExpectation:
    """An expectation from its stored bytes (StoreDataError when they are not one)."""
    try:
        return _expectation_decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise StoreDataError(f"a stored expectation cannot be read: {exc}") from exc


def decode_ack(payload: bytes) -> DomainAck:
    """An ack from its stored bytes (StoreDataError when they are not one)."""
    try:
        return _ack_decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise StoreDataError(f"a stored ack cannot be read: {exc}") from exc
