"""Contract: bad input gets a typed error and changes nothing, in Python and in Lua."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from rac_store import (
    AuditExpectation,
    AuditStatus,
    AuditStore,
    DomainAck,
    InvalidInputError,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.scripts import ScriptCall
from rac_store.validation import MAX_BATCH, MAX_NAME_BYTES, MAX_PAYLOAD_BYTES

from .support.snapshot import snapshot

RUN = uuid.UUID("6f1c2a34-8a64-4c4e-9d62-5b0f3c8e9a11")
OTHER = uuid.UUID("0b7e6c2d-1f4a-4e8b-a3c1-7d9e2f5a6b40")


def exp(**changes: Any) -> AuditExpectation:
    base = AuditExpectation(RUN, "d", "a")
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def ack(**changes: Any) -> DomainAck:
    base = DomainAck(RUN, "d", "a")
    for name, value in changes.items():
        setattr(base, name, value)
    return base


BAD_EXPECTATIONS = {
    "empty domain": exp(domain=""),
    "separator in action": exp(action="a|b"),
    "newline in domain": exp(domain="d\n"),
    "over-long action": exp(action="x" * (MAX_NAME_BYTES + 1)),
    "over-long in bytes": exp(action="é" * (MAX_NAME_BYTES // 2 + 1)),
    "lone surrogate": exp(domain="\ud800"),
    "non-string domain": exp(domain=7),
    "other run": exp(run_id=OTHER),
    "run id as text": exp(run_id=str(RUN)),
    "negative deadline": exp(deadline_ms=-1),
    "float deadline": exp(deadline_ms=1.5),
    "bool deadline": exp(deadline_ms=True),
    "huge deadline": exp(deadline_ms=10**13),
    "naive created_at": exp(created_at=datetime(2026, 1, 1)),
    "bad id": exp(id="nope"),
    "unencodable metadata": exp(metadata={"f": object()}),
    "non-string metadata key": exp(metadata={1: "x"}),
    "oversized metadata": exp(metadata={"blob": "x" * MAX_PAYLOAD_BYTES}),
    "bad status": exp(status="DONE"),
}

BAD_ACKS = {
    "empty action": ack(action=""),
    "other run": ack(run_id=OTHER),
    "bad status": ack(status="OK"),
    "error not text": ack(error=RuntimeError("x")),
    "rolled_back not bool": ack(rolled_back="yes"),
    "oversized error": ack(error="e" * (MAX_PAYLOAD_BYTES + 1)),
    "bad id": ack(id=str(uuid.uuid4())),
    "control char action": ack(action="a\x00"),
}


@pytest.fixture
def seeded(store: AuditStore, raw_client: Any) -> dict[bytes, Any]:
    """A store holding one run, and the server state to compare against."""
    store.add_expectations(RUN, create_run_expectations(RUN))
    store.add_ack(RUN, create_domain_ack(RUN, "incidents", "create_incident"))
    return snapshot(raw_client)


@pytest.mark.parametrize("bad", BAD_EXPECTATIONS.values(), ids=BAD_EXPECTATIONS.keys())
def test_bad_expectation_rejected_and_nothing_written(
    store: AuditStore, raw_client: Any, seeded: dict[bytes, Any], bad: AuditExpectation
) -> None:
    good = AuditExpectation(RUN, "fine", "one")
    with pytest.raises(InvalidInputError):
        store.add_expectations(RUN, [good, bad])
    assert snapshot(raw_client) == seeded


@pytest.mark.parametrize("bad", BAD_ACKS.values(), ids=BAD_ACKS.keys())
def test_bad_ack_rejected_and_nothing_written(
    store: AuditStore, raw_client: Any, seeded: dict[bytes, Any], bad: DomainAck
) -> None:
    with pytest.raises(InvalidInputError):
        store.add_ack(RUN, bad)
    with pytest.raises(InvalidInputError):
        store.add_acks(RUN, [create_domain_ack(RUN, "fine", "one"), bad])
    assert snapshot(raw_client) == seeded


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.add_ack("not-a-uuid", create_domain_ack(RUN, "d", "a")),
        lambda s: s.add_ack(RUN, "not an ack"),
        lambda s: s.add_acks(RUN, "not a list"),
        lambda s: s.add_acks(RUN, [create_domain_ack(RUN, "d", "a")] * (MAX_BATCH + 1)),
        lambda s: s.add_expectations(12, []),
        lambda s: s.add_expectations(RUN, [object()]),
        lambda s: s.update_expectation_status(RUN, "d", "a", "DONE"),
        lambda s: s.update_expectation_status(RUN, "d|x", "a", AuditStatus.ACKED),
        lambda s: s.clear_run(None),
        lambda s: s.get_expectations("x"),
    ],
)
def test_bad_arguments_rejected_and_nothing_written(
    store: AuditStore, raw_client: Any, seeded: dict[bytes, Any], call: Any
) -> None:
    with pytest.raises(InvalidInputError):
        call(store)
    assert snapshot(raw_client) == seeded


TOKEN = b"\x00call-token"  # add_acks' ARGV[2] (rac_store.core.call_token)


def _malformed_calls(store: AuditStore) -> dict[str, ScriptCall]:
    keys = store.core.keys.for_run(str(RUN))
    payload = b"\x90"
    return {
        "ack: zero ttl": ScriptCall(
            "add_acks", keys, (0, TOKEN, 1, str(RUN), 1, b"i", "d|a", "1", payload), "t"
        ),
        "ack: bad ok flag": ScriptCall(
            "add_acks", keys, (1000, TOKEN, 1, str(RUN), 1, b"i", "d|a", "yes", payload), "t"
        ),
        "ack: second ack bad": ScriptCall(
            "add_acks",
            keys,
            (1000, TOKEN, 1, str(RUN), 2, b"i", "d|a", "1", payload, b"j", "nokey", "1", payload),
            "t",
        ),
        "ack: short args": ScriptCall(
            "add_acks", keys, (1000, TOKEN, 1, str(RUN), 2, b"i", "d|a", "1", payload), "t"
        ),
        "ack: empty call token": ScriptCall(
            "add_acks", keys, (1000, b"", 1, str(RUN), 1, b"i", "d|a", "1", payload), "t"
        ),
        "ack: key count": ScriptCall("add_acks", keys[:3], (1000, TOKEN, 1, str(RUN), 0), "t"),
        "exp: bad deadline": ScriptCall(
            "add_expectations",
            keys,
            (1000, str(RUN), 2, "d|b", 5, payload, "d|c", -5, payload),
            "t",
        ),
        "exp: count": ScriptCall(
            "add_expectations", keys, (1000, str(RUN), 3, "d|b", 5, payload), "t"
        ),
        "status: unknown": ScriptCall(
            "update_status", keys, (1000, str(RUN), "incidents|create_incident", "DONE"), "t"
        ),
        "clear: no run": ScriptCall("clear_run", keys, ("",), "t"),
    }


def test_lua_validates_before_the_first_write(
    store: AuditStore, raw_client: Any, seeded: dict[bytes, Any]
) -> None:
    for name, call in _malformed_calls(store).items():
        with pytest.raises(InvalidInputError, match="RAC_BADARG"):
            store.execute(call)
        assert snapshot(raw_client) == seeded, name
