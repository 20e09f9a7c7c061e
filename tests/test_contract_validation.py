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
from rac_store.scripts import Script, ScriptCall
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


TOKEN = b"\x00call-token"  # add_acks' ARGV[2] (rac_store.acks.call_token)
PAYLOAD = b"\x90"  # an encoded record (opaque to the scripts)
MAXLEN = 100  # the findings stream bound, next to last ARGV of the writing scripts


def _ack_args(
    *acks: tuple[Any, ...],
    ttl: Any = 1000,
    token: Any = TOKEN,
    count: Any = None,
    run: Any = None,
    maxlen: Any = MAXLEN,
    epoch: Any = "e",
) -> tuple[Any, ...]:
    """add_acks' ARGV for one run: every part valid unless overridden."""
    flat = [part for one in acks for part in one]
    m = len(acks) if count is None else count
    return (ttl, token, 1, str(RUN) if run is None else run, m, *flat, maxlen, epoch)


ACK = (b"i", "d|a", "1", PAYLOAD)
ACK2 = (b"j", "d|b", "0", PAYLOAD)
EXP = ("d|b", 5, "0", PAYLOAD)  # key, deadline_ms, live flag, encoded expectation


def _malformed_calls(store: AuditStore) -> dict[str, tuple[ScriptCall, str]]:
    """Each malformed call, built to pass every check before the one it names, and the
    exact error that check replies (lua/<script>.lua validates in this order)."""
    keys = store.core.keys.for_run(str(RUN))
    run_keys = keys.run_keys
    epoch = store.core.epochs.get(keys.epoch, "e")
    one_run = (keys.pending, *run_keys, keys.findings, keys.epoch)
    two_runs = (keys.pending, *run_keys, *run_keys, keys.findings, keys.epoch)
    clear = (keys.pending, *run_keys, keys.epoch)
    finding_keys = (keys.st, keys.findings, keys.epoch)
    valid_run = (str(RUN), 1, *ACK)

    def call(script: str, call_keys: Any, args: tuple[Any, ...]) -> ScriptCall:
        return ScriptCall(Script(script), call_keys, args, "t")

    def acks(args: tuple[Any, ...], call_keys: Any = one_run) -> ScriptCall:
        return call("add_acks", call_keys, args)

    def exps(*args: Any, call_keys: Any = one_run) -> ScriptCall:
        return call("add_expectations", call_keys, (*args, epoch))

    def status(*args: Any, call_keys: Any = one_run) -> ScriptCall:
        return call("update_status", call_keys, (*args, epoch))

    def sweep(script: str, *args: Any) -> ScriptCall:
        return call(script, one_run, (*args, epoch))

    def finding(*args: Any) -> ScriptCall:
        return call("record_finding", finding_keys, (*args, epoch))

    cases = {
        # add_acks.lua
        "ack: zero ttl": (acks(_ack_args(ACK, ttl=0, epoch=epoch)), "ttl_ms"),
        "ack: empty call token": (acks(_ack_args(ACK, token=b"", epoch=epoch)), "call token"),
        "ack: key count": (acks(_ack_args(ACK, epoch=epoch), one_run[:3]), "key count"),
        "ack: zero maxlen": (acks(_ack_args(ACK, maxlen=0, epoch=epoch)), "findings maxlen"),
        "ack: empty run id": (acks(_ack_args(ACK, run="", epoch=epoch)), "run_id of run 1"),
        "ack: second run's empty run id": (
            acks((1000, TOKEN, 2, *valid_run, "", 1, *ACK2, MAXLEN, epoch), two_runs),
            "run_id of run 2",
        ),
        "ack: bad ack count": (
            acks(_ack_args(ACK, count="x", epoch=epoch)),
            "ack count of run 1",
        ),
        "ack: short args": (acks(_ack_args(ACK, count=2, epoch=epoch)), "argument count"),
        "ack: extra args": (
            acks((*_ack_args(ACK, epoch=epoch)[:-2], "extra", MAXLEN, epoch)),
            "argument count",
        ),
        "ack: empty ack id": (
            acks(_ack_args((b"", *ACK[1:]), epoch=epoch)),
            "ack id of ack 1",
        ),
        "ack: no separator": (
            acks(_ack_args((b"i", "nokey", "1", PAYLOAD), epoch=epoch)),
            "expectation key of ack 1",
        ),
        "ack: second ack no separator": (
            acks(_ack_args(ACK, (b"j", "nokey", "1", PAYLOAD), epoch=epoch)),
            "expectation key of ack 2",
        ),
        "ack: bad ok flag": (
            acks(_ack_args((b"i", "d|a", "yes", PAYLOAD), epoch=epoch)),
            "ok flag of ack 1",
        ),
        "ack: second ack bad ok flag": (
            acks(_ack_args(ACK, (b"j", "d|b", "3", PAYLOAD), epoch=epoch)),
            "ok flag of ack 2",
        ),
        # add_expectations.lua
        "exp: key count": (
            exps(1000, str(RUN), 1, *EXP, MAXLEN, call_keys=one_run[:7]),
            "expected 8 keys",
        ),
        "exp: zero ttl": (exps(0, str(RUN), 1, *EXP, MAXLEN), "ttl_ms"),
        "exp: empty run id": (exps(1000, "", 1, *EXP, MAXLEN), "run_id"),
        "exp: count": (exps(1000, str(RUN), 3, *EXP, MAXLEN), "argument count"),
        "exp: zero maxlen": (exps(1000, str(RUN), 1, *EXP, 0), "findings maxlen"),
        "exp: no separator": (
            exps(1000, str(RUN), 2, *EXP, "dc", 5, "0", PAYLOAD, MAXLEN),
            "expectation key 2",
        ),
        "exp: bad deadline": (
            exps(1000, str(RUN), 2, *EXP, "d|c", -5, "0", PAYLOAD, MAXLEN),
            "deadline_ms of expectation 2",
        ),
        "exp: bad live flag": (
            exps(1000, str(RUN), 2, *EXP, "d|c", 5, "yes", PAYLOAD, MAXLEN),
            "live flag of expectation 2",
        ),
        # update_status.lua
        "status: arguments": (
            call("update_status", one_run, (1000, str(RUN), "d|a", "ACKED", epoch)),
            "expected 8 keys and 6 arguments",
        ),
        "status: zero ttl": (status(0, str(RUN), "d|a", "ACKED", MAXLEN), "ttl_ms"),
        "status: zero maxlen": (status(1000, str(RUN), "d|a", "ACKED", 0), "findings maxlen"),
        "status: empty run id": (status(1000, "", "d|a", "ACKED", MAXLEN), "run_id"),
        "status: no separator": (
            status(1000, str(RUN), "incidents", "ACKED", MAXLEN),
            "expectation key",
        ),
        "status: unknown": (
            status(1000, str(RUN), "incidents|create_incident", "DONE", MAXLEN),
            "status",
        ),
        # sweep_run.lua and end_run.lua (the same arguments, checked in the same order)
        **{
            f"{script}: arguments": (
                call(script, one_run, (1000, str(RUN), 10, epoch)),
                "expected 8 keys and 5 arguments",
            )
            for script in ("sweep_run", "end_run")
        },
        **{
            f"{script}: zero ttl": (sweep(script, 0, str(RUN), 10, MAXLEN), "ttl_ms")
            for script in ("sweep_run", "end_run")
        },
        **{
            f"{script}: empty run id": (sweep(script, 1000, "", 10, MAXLEN), "run_id")
            for script in ("sweep_run", "end_run")
        },
        **{
            f"{script}: limit over 1000": (sweep(script, 1000, str(RUN), 1001, MAXLEN), "limit")
            for script in ("sweep_run", "end_run")
        },
        **{
            f"{script}: zero maxlen": (sweep(script, 1000, str(RUN), 10, 0), "findings maxlen")
            for script in ("sweep_run", "end_run")
        },
        # clear_run.lua
        "clear: no run": (
            call("clear_run", clear, ("", epoch)),
            "expected 7 keys, a run_id and the store epoch",
        ),
        # record_finding.lua
        "finding: arguments": (
            call("record_finding", finding_keys, (MAXLEN, "STALE", epoch)),
            "expected 3 keys and 4 + 2k arguments",
        ),
        "finding: zero maxlen": (finding(0, "STALE", str(RUN)), "findings maxlen"),
        "finding: type": (finding(MAXLEN, "COMPLETE", str(RUN)), "event type"),
        "finding: empty run id": (finding(MAXLEN, "STALE", ""), "run_id"),
        "finding: reserved field": (
            finding(MAXLEN, "STALE", str(RUN), "at_ms", "1"),
            "field name",
        ),
        # init_meta.lua, read_expectations.lua, read_run.lua
        "meta: arguments": (
            call("init_meta", (keys.pending,), (16,)),
            "expected 1 key and 2 arguments",
        ),
        "meta: shard count": (call("init_meta", (store.core.keys.meta,), (0, "1")), "shard count"),
        "read: keys": (call("read_expectations", run_keys[:1], ()), "expected 2 keys"),
        "read run: keys": (call("read_run", run_keys[:3], ()), "expected 4 keys"),
    }
    return {name: (made, f"RAC_BADARG {error}") for name, (made, error) in cases.items()}


MALFORMED = list(_malformed_calls(AuditStore()))


@pytest.mark.parametrize("name", MALFORMED)
def test_lua_validates_before_the_first_write(
    store: AuditStore, raw_client: Any, seeded: dict[bytes, Any], name: str
) -> None:
    """The exact error of the check each call is built to fail, and nothing written."""
    call, error = _malformed_calls(store)[name]
    with pytest.raises(InvalidInputError) as caught:
        store.execute(call)
    assert str(caught.value) == f"t: {error}"
    assert snapshot(raw_client) == seeded
