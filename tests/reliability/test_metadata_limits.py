"""Issue 15, item 1: metadata depth and size are bounded before encoding; reads never fail.

Metadata that contains itself, or nests deeper than MAX_METADATA_DEPTH, or holds more
values or text than a payload can, is refused with InvalidInputError before anything
is encoded or sent — never a RecursionError — and the server is left unchanged. What
is accepted reads back (get_expectations, get_acks, reconcile, snapshot) even from a
thread with a small stack and a tenth of the recursion limit left. A record forged
deeper than any write accepts reads as StoreDataError, a typed error.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from rac_store import (
    AuditExpectation,
    AuditReconciler,
    AuditStore,
    DomainAck,
    InvalidInputError,
    StoreDataError,
    codec,
)
from rac_store.validation import MAX_METADATA_DEPTH, MAX_PAYLOAD_BYTES

from ..support.faults import digest

pytestmark = pytest.mark.redis_only

T = TypeVar("T")
FRAMES_LEFT = 100
"""A reader this close to the recursion limit (a tenth of CPython's default)."""


def nested(levels: int) -> dict[str, Any]:
    """Metadata whose nesting is ``levels`` deep (the metadata dict itself is level 1)."""
    value: Any = "leaf"
    for _ in range(levels - 1):
        value = [value]
    return {"m": value}


def self_containing() -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "loop"}
    metadata["self"] = metadata
    return metadata


def shared_fan_out() -> dict[str, Any]:
    """Small in memory, 10**20 values when walked (one list shared at every level)."""
    value: Any = [0] * 10
    for _ in range(19):
        value = [value] * 10
    return {"fan": value}


HOSTILE: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "contains itself": (self_containing, "nested deeper than 32 levels .or contains itself"),
    "nested 1,000 deep": (lambda: nested(1000), "nested deeper than 32"),
    "nested 900 deep": (lambda: nested(900), "nested deeper than 32"),
    "one level too deep": (lambda: nested(MAX_METADATA_DEPTH + 1), "nested deeper than 32"),
    "a list shared 10**20 times": (shared_fan_out, "more than 65,536 values"),
    "10 MB of text": (lambda: {"blob": "x" * 10_000_000}, "more than 65,536 bytes of text"),
    "an object": (lambda: {"lock": threading.Lock()}, "must hold plain data"),
}


def _depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        depth, frame = depth + 1, frame.f_back  # type: ignore[assignment]
    return depth


def near_the_limit(read: Callable[[], T]) -> T:
    """``read()`` in a thread with a 256 KiB stack, with FRAMES_LEFT frames to spare."""
    result: list[Any] = []

    def descend() -> None:
        if sys.getrecursionlimit() - _depth() > FRAMES_LEFT:
            descend()
            return
        try:
            result.append(read())
        except BaseException as exc:
            result.append(exc)

    size = threading.stack_size(256 * 1024)
    try:
        thread = threading.Thread(target=descend)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(size)
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("backend", ["redis", "async-redis"], indirect=True)
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_metadata_is_refused_before_encoding(
    store: AuditStore, raw_client: Any, name: str
) -> None:
    make, message = HOSTILE[name]
    run = uuid.uuid4()
    before = digest(raw_client)
    with pytest.raises(InvalidInputError, match=message):
        store.add_expectations(run, [AuditExpectation(run, "d", "a", metadata=make())])
    with pytest.raises(InvalidInputError, match=message):
        store.add_ack(run, DomainAck(run, "d", "a", metadata=make()))
    with pytest.raises(InvalidInputError, match=message):
        store.add_acks(run, [DomainAck(run, "d", "b"), DomainAck(run, "d", "a", metadata=make())])
    assert digest(raw_client) == before


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_the_deepest_accepted_metadata_reads_back_near_the_stack_limit(
    store: AuditStore,
) -> None:
    run = uuid.uuid4()
    deepest = nested(MAX_METADATA_DEPTH)
    store.add_expectations(run, [AuditExpectation(run, "d", "a", 60_000, metadata=deepest)])
    store.add_ack(run, DomainAck(run, "d", "b", metadata=deepest))
    reconciler = AuditReconciler(store)
    (exp,) = near_the_limit(lambda: store.get_expectations(run))
    (ack,) = near_the_limit(lambda: store.get_acks(run))
    assert exp.metadata == deepest and ack.metadata == deepest
    assert near_the_limit(lambda: reconciler.reconcile(run, record=False)).drift_actions == [
        ("d", "b")
    ]
    assert len(near_the_limit(lambda: reconciler.snapshot(run)).expectations) == 1


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_a_forged_record_deeper_than_any_write_reads_as_a_typed_error(
    store: AuditStore, raw_client: Any
) -> None:
    """Something else (a worker within its prefix: docs/security.md) wrote the record."""
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "d", "a", metadata={"m": None})])
    keys = store.core.keys.for_run(str(run))
    (payload,) = raw_client.hvals(keys.exp)
    forged = payload.replace(b"\x81\xa1m\xc0", b"\x81\xa1m" + b"\x91" * 100_000 + b"\xc0")
    assert len(forged) > MAX_PAYLOAD_BYTES
    raw_client.hset(keys.exp, "d|a", forged)
    with pytest.raises(StoreDataError, match="cannot be read"):
        store.get_expectations(run)
    with pytest.raises(StoreDataError):
        codec.decode_ack(b"\xc1")  # not msgpack at all
