"""Issue 6, item 5: no partial writes, whatever the input.

Hypothesis drives every public method with hostile values — unicode, control
characters, quotes, ``]]``, braces, Lua and Redis syntax, huge strings, wrong
types, invalid ids, oversized metadata. Each call either round-trips byte-exact
or raises a typed error (RACStoreError) with the data set unchanged (DEBUG
DIGEST on redis-server, a full dump on the embedded server). Runs on every
backend of the contract suite (embedded, redis, redis as the ACL worker).

Two more checks: the Lua sources hold nothing that could run data as code, and
a Redis user allowed *only* one run's declared keys can do everything with
that run (so no script touches a key it was not given).
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rac_store import (
    AckStatus,
    AuditExpectation,
    AuditReconciler,
    AuditStatus,
    AuditStore,
    DomainAck,
    RACStoreError,
    codec,
)
from rac_store.acl import worker_rules
from rac_store.scripts import Script, load_source

from ..conftest import ACL_PASSWORD, SYNC_BACKENDS
from ..support.faults import digest
from ..support.redis_server import RedisServer

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NASTY = [
    "]]", "[[", "]]..redis.call('FLUSHALL')..[[", "'); redis.call('FLUSHALL') --",
    "{", "}", "{0}", "rac:{1}:exp:x", "KEYS[1]", "ARGV[1]", "return 1", "\\", "\\0",
    '"', "'", "%s%d%n", "\x00", "\x7f", "\n", "\r\n", "\t", "\u2028", "\ufeff",
    "\ud800", "💥", "é" * 65, "x" * 129, "x" * 128, " ", "", "|", "a|b", "nil", "true",
    "*", "?", "[a-z]", "\x1b[31m", "DEBUG SLEEP 10",
]  # fmt: skip
"""Texts aimed at Lua, Redis globs, hash tags, our separator and our size limits."""

texts = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
    st.builds(lambda s, n: s * n, st.sampled_from(["a", "é", "💥", "]]"]), st.integers(1, 300)),
)
"""Any text, valid as a name or not."""
_printable = st.characters(
    exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"), exclude_characters="|"
)
name_texts = st.one_of(
    st.sampled_from([t for t in NASTY if t.isprintable() and "|" not in t and 0 < len(t) < 40]),
    # hypothesis and Python's isprintable disagree on a few unassigned code points
    st.text(_printable, min_size=1, max_size=30).filter(str.isprintable),
)
"""Hostile texts that are nonetheless valid names: these must round-trip byte-exact."""
wrong_types = st.one_of(
    st.none(), st.integers(), st.floats(), st.binary(max_size=8), st.booleans(),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers()),
)  # fmt: skip
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
    st.text(max_size=30), st.sampled_from(NASTY[:20]), st.binary(max_size=20),
)  # fmt: skip
json_like = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
aware_moments = st.datetimes(
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30))])
)

# One field at a time gets a hostile value; the rest stay valid, so most calls
# exercise the server path and every field's checks are reached.
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "run_id": st.one_of(st.uuids(), st.uuids().map(str), wrong_types),
    "domain": st.one_of(texts, wrong_types),
    "action": st.one_of(texts, wrong_types),
    "deadline_ms": st.one_of(st.integers(), wrong_types),
    "id": st.one_of(st.uuids().map(str), wrong_types),
    "status": st.one_of(texts, wrong_types),
    "created_at": st.one_of(st.datetimes(), wrong_types),  # naive or not a time
    "metadata": st.one_of(
        st.dictionaries(st.integers() | st.none(), json_like, min_size=1, max_size=2),
        st.dictionaries(texts, texts, max_size=3),  # e.g. lone surrogates
        st.builds(lambda n: {"blob": "x" * n}, st.integers(65_400, 65_600)),  # the limit
        st.integers(2**64, 2**70).map(lambda n: {"big": n}),
        wrong_types,
    ),
    "result_id": st.one_of(texts, wrong_types),
    "error": st.one_of(texts, wrong_types),
    "rolled_back": wrong_types,
    "rollback_reason": st.one_of(texts, wrong_types),
}


def _corrupt(item: Any, field: str, value: Any) -> Any:
    setattr(item, field, value)
    return item


def _hostile_model(model: type, run: uuid.UUID, **own: st.SearchStrategy[Any]) -> Any:
    """Valid ``model`` instances of ``run``, or ones with a single field made hostile."""
    fields: dict[str, st.SearchStrategy[Any]] = {
        "run_id": st.just(run),
        "domain": name_texts,
        "action": name_texts,
        "id": st.uuids(),
        "created_at": aware_moments,
        "metadata": st.dictionaries(st.text(max_size=10), json_like, max_size=5),
        **own,
    }
    base = st.builds(model, **fields)
    corrupted = [st.builds(_corrupt, base, st.just(name), HOSTILE[name]) for name in fields]
    return st.one_of(base, base, st.one_of(*corrupted))  # two in three stay valid


def expectations(run: uuid.UUID) -> st.SearchStrategy[Any]:
    return _hostile_model(
        AuditExpectation,
        run,
        deadline_ms=st.integers(0, 30 * 24 * 3600 * 1000),
        status=st.sampled_from(list(AuditStatus)),
    )


def acks(run: uuid.UUID) -> st.SearchStrategy[Any]:
    return _hostile_model(
        DomainAck,
        run,
        status=st.sampled_from(list(AckStatus)),
        result_id=st.none() | texts,
        error=st.none() | texts,
        rolled_back=st.booleans(),
        rollback_reason=st.none() | texts,
    )


run_ids = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids(),
    texts,
    wrong_types,
)
names = st.one_of(name_texts, texts, wrong_types)


RUN = uuid.UUID("2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901")


def attempt(raw_client: Any, call: Callable[[], Any]) -> tuple[bool, Any]:
    """(True, result), or (False, None) after a typed error that changed nothing."""
    before = digest(raw_client)
    try:
        result = call()
    except RACStoreError as exc:
        event(f"refused: {type(exc).__name__}")
        assert digest(raw_client) == before
        return False, None
    event("accepted")
    return True, result


def fresh_run() -> uuid.UUID:
    return uuid.uuid4()


def with_run(item: Any, run: uuid.UUID) -> Any:
    """The generated item, moved to ``run`` when it was generated for RUN."""
    if item.run_id == RUN:
        item.run_id = run
    return item


def on_fresh_run(
    raw_client: Any, items: list[Any], call: Callable[[uuid.UUID, list[Any]], Any]
) -> tuple[uuid.UUID, list[Any], bool, Any]:
    """``call(run, items)`` on a new run (items generated for RUN moved to it), via attempt."""
    run = fresh_run()
    items = [with_run(item, run) for item in items]
    ok, result = attempt(raw_client, lambda: call(run, items))
    return run, items, ok, result


_UNBOUNDED = msgspec.msgpack.Encoder(uuid_format="bytes")


def bare(exp: AuditExpectation) -> bytes:
    """An expectation's bytes without what the store itself decides (status, times).

    Not codec.encode: an expectation just under the size limit as ACKED may be
    over it as PENDING (a longer status), and this is only a comparison.
    """
    return _UNBOUNDED.encode(
        msgspec.structs.replace(exp, status=AuditStatus.PENDING, acked_at=None, late=False)
    )


@PROPERTY
@given(items=st.lists(expectations(RUN), max_size=3))
def test_add_expectations(store: AuditStore, raw_client: Any, items: list[Any]) -> None:
    run, items, ok, added = on_fresh_run(raw_client, items, store.add_expectations)
    if ok:
        sent = {item.key(): bare(item) for item in reversed(items)}
        stored = store.get_expectations(run)
        assert added == len(stored) == len({item.key() for item in items})
        for exp in stored:
            assert bare(exp) == sent[exp.key()]  # the first declaration of each key, byte-exact


@PROPERTY
@given(ack=acks(RUN))
def test_add_ack(store: AuditStore, raw_client: Any, ack: Any) -> None:
    run, (ack,), ok, outcome = on_fresh_run(raw_client, [ack], lambda r, a: store.add_ack(r, a[0]))
    if ok:
        assert outcome == "DRIFT"
        assert [codec.encode(a) for a in store.get_acks(run)] == [codec.encode(ack)]


@PROPERTY
@given(batch=st.lists(acks(RUN), max_size=4))
def test_add_acks(store: AuditStore, raw_client: Any, batch: list[Any]) -> None:
    run, batch, ok, outcomes = on_fresh_run(raw_client, batch, store.add_acks)
    if ok:
        first: dict[uuid.UUID, bytes] = {}
        for ack in batch:
            first.setdefault(ack.id, codec.encode(ack))
        assert [codec.encode(a) for a in store.get_acks(run)] == list(first.values())
        assert outcomes.count("DUPLICATE") == len(batch) - len(first)


@PROPERTY
@given(domain=names, action=names, status=st.one_of(st.sampled_from(list(AuditStatus)), names))
def test_update_expectation_status(
    store: AuditStore, raw_client: Any, domain: Any, action: Any, status: Any
) -> None:
    run = fresh_run()
    ok, declared = attempt(
        raw_client, lambda: store.add_expectations(run, [AuditExpectation(run, domain, action)])
    )
    ok, exists = attempt(
        raw_client, lambda: store.update_expectation_status(run, domain, action, status)
    )
    if ok:
        assert exists is bool(declared)
        if exists:
            (exp,) = store.get_expectations(run)
            assert exp.status is AuditStatus(status)


@PROPERTY
@given(run_id=run_ids)
def test_run_id_of_every_method(store: AuditStore, raw_client: Any, run_id: Any) -> None:
    """Every method taking a run id: a typed error, or the canonical run's data."""
    calls: dict[str, Callable[[], Any]] = {
        "get_expectations": lambda: store.get_expectations(run_id),
        "get_acks": lambda: store.get_acks(run_id),
        "load_from_redis": lambda: store.load_from_redis(run_id),
        "add_expectations": lambda: store.add_expectations(run_id, []),
        "add_acks": lambda: store.add_acks(run_id, []),
        "update_expectation_status": lambda: store.update_expectation_status(
            run_id, "d", "a", AuditStatus.ACKED
        ),
        "clear_run": lambda: store.clear_run(run_id),
    }
    valid = True
    try:
        uuid.UUID(str(run_id)) if isinstance(run_id, str | uuid.UUID) else None
    except ValueError:
        valid = False
    valid = valid and isinstance(run_id, str | uuid.UUID)
    for name, call in calls.items():
        ok, result = attempt(raw_client, call)
        assert ok is valid, name
        if ok and name != "add_acks":
            assert not result, name  # an unknown run holds nothing


@PROPERTY
@given(
    due_before=st.one_of(st.none(), st.integers(), aware_moments, st.datetimes(), wrong_types),
    limit=st.one_of(st.none(), st.integers(-3, 5), wrong_types),
)
def test_get_pending_run_ids(
    store: AuditStore, raw_client: Any, due_before: Any, limit: Any
) -> None:
    store.add_expectations(RUN, [AuditExpectation(RUN, "d", "a", 600_000)])  # one pending run
    score = int(raw_client.zscore(store.core.keys.for_run(str(RUN)).pending, str(RUN)))
    ok, result = attempt(
        raw_client, lambda: store.get_pending_run_ids(due_before=due_before, limit=limit)
    )
    valid_limit = limit is None or is_count(limit, minimum=0)
    assert ok is (is_due_bound(due_before) and valid_limit), (due_before, limit)
    if ok:
        bound = None if due_before is None else as_epoch_ms(due_before)
        listed = (bound is None or score <= bound) and limit != 0
        assert result == ([str(RUN)] if listed else [])


KEY_AFTER = {
    "XINFO": r",\s*'\w+',\s*([^,)]*)",
    "XGROUP": r",\s*'\w+',\s*([^,)]*)",
    "XREADGROUP": r".*?'STREAMS',\s*([^,)]*)",
}
"""Commands whose key is not their first argument: where it is."""


def test_lua_sources_cannot_run_data_as_code() -> None:
    """No script compiles, loads or decodes data; all keys come from KEYS."""
    forbidden = re.compile(
        r"\b(loadstring|load|dofile|loadfile|setfenv|getfenv|rawset|cjson|cmsgpack|bit)\b"
        r"|string\.dump|_G\b"
    )
    for name in tuple(Script):
        text = load_source(name).server_text
        code = re.sub(r"--\[\[.*?\]\]|--[^\n]*", "", text, flags=re.DOTALL)
        assert not forbidden.search(code), (name, forbidden.search(code))
        for call in re.finditer(r"redis\.call\('(\w+)',?\s*([^,)]*)", code):
            command, first = call.groups()
            if command in KEY_AFTER:  # a subcommand or an option comes before the key
                first = re.match(KEY_AFTER[command], code[call.end(1) + 1 :]).group(1)
            if command not in {"TIME"}:
                assert re.fullmatch(r"KEYS\[[\w +\-]+\]|\w+_key|pending_key", first), (
                    name,
                    call[0],
                )


@pytest.mark.redis_only
def test_scripts_touch_only_the_keys_they_are_given(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """A user allowed exactly one run's keys, the meta key and the shards' epoch keys (a
    store makes or reads them when it opens) can do all of it."""
    admin = AuditStore(redis_client)
    run = str(fresh_run())
    keys = admin.core.keys.for_run(run)
    rules = [r for r in worker_rules() if not r.startswith("~")]
    opening = (admin.core.keys.meta, *admin.core.keys.all_epochs())
    patterns = [f"~{key}" for key in dict.fromkeys((*keys, *opening))]
    redis_client.execute_command(
        "ACL", "SETUSER", "one-run", "reset", "on", f">{ACL_PASSWORD}", *rules, *patterns
    )
    try:
        store = AuditStore(redis_server.client(username="one-run", password=ACL_PASSWORD))
        exps = [AuditExpectation(uuid.UUID(run), "d", f"a{i}", 0) for i in range(3)]
        assert store.add_expectations(run, exps) == 3
        time.sleep(0.01)  # past the 0 ms deadlines
        assert store.add_ack(run, DomainAck(uuid.UUID(run), "d", "a0")) == "LATE"
        assert store.add_acks(run, [DomainAck(uuid.UUID(run), "x", "y")] * 2) == [
            "DRIFT",
            "DUPLICATE",
        ]
        assert store.update_expectation_status(run, "d", "a1", AuditStatus.MISSING)
        assert store.update_expectation_status(run, "d", "a1", AuditStatus.FAILED)
        assert len(store.get_expectations(run)) == 3
        assert len(store.get_acks(run)) == 2
        assert store.clear_run(run)
        # ... and the same user is refused any other run's keys.
        other = fresh_run()
        with pytest.raises(RACStoreError, match=r"no permissions|NOPERM|can't"):
            store.add_ack(other, DomainAck(other, "d", "a"))
    finally:
        redis_client.acl_deluser("one-run")


counts = st.one_of(st.integers(-3, 2000), wrong_types)


@pytest.mark.parametrize("backend", SYNC_BACKENDS, indirect=True)
@PROPERTY
@given(
    run_id=run_ids,
    limit=counts,
    marks=counts,
    since=st.one_of(st.sampled_from(["0", "$"]), texts, wrong_types),
    count=counts,
)
def test_reconciler_arguments(
    store: AuditStore, raw_client: Any, run_id: Any, limit: Any, marks: Any, since: Any, count: Any
) -> None:
    """The reconciler's public methods: a typed error with nothing changed, or the exact result.

    A valid run id gets one PENDING expectation (not yet due) first, cleared after.
    """
    reconciler = AuditReconciler(store)
    valid_run = is_run_id(run_id)
    if valid_run:
        run = uuid.UUID(str(run_id))
        store.add_expectations(run, [AuditExpectation(run, "d", "a", 600_000)])
    calls: dict[str, Callable[[], Any]] = {
        "reconcile": lambda: reconciler.reconcile(run_id),
        "check_deadline_violations": lambda: reconciler.check_deadline_violations(run_id),
        "get_run_audit_summary": lambda: reconciler.get_run_audit_summary(run_id),
        "pending": lambda: reconciler.pending(limit=limit),
        "sweep": lambda: reconciler.sweep(limit=limit, marks_per_run=marks),
        "iter_findings": lambda: list(reconciler.iter_findings(since=since, count=count)),
    }
    accepted = {
        "reconcile": valid_run,
        "check_deadline_violations": valid_run,
        "get_run_audit_summary": valid_run,
        "pending": is_count(limit, minimum=1),
        "sweep": is_count(limit, minimum=1) and is_count(marks, minimum=1, maximum=1000),
        "iter_findings": (since in ("0", "$") or isinstance(since, dict))
        and is_count(count, minimum=1),
    }
    try:
        for name, call in calls.items():
            ok, result = attempt(raw_client, call)
            assert ok is accepted[name], name
            if not ok:
                continue
            if name == "reconcile":
                assert (result.status.value, result.pending_actions, result.missing_actions) == (
                    "IN_PROGRESS",
                    [("d", "a")],
                    [],
                )
            elif name == "check_deadline_violations":
                assert result == []
            elif name == "get_run_audit_summary":
                assert (
                    result["status"],
                    result["expectations"],
                    result["by_status"]["PENDING"],
                ) == (
                    "IN_PROGRESS",
                    1,
                    1,
                )
            elif name == "pending":
                expected = [str(run)] if valid_run else []
                assert ([r.run_id for r in result.runs], result.more) == (expected, False)
            elif name == "sweep":
                assert (result.runs_swept, result.findings, result.more_due) == (0, [], False)
            else:
                assert result == []  # nothing ever emitted a finding
    finally:
        if valid_run:
            store.clear_run(run)


@pytest.mark.parametrize("backend", ["embedded", "redis"], indirect=True)
def test_nfc_and_nfd_spellings_are_two_names(store: AuditStore) -> None:
    """Names are compared byte for byte, never normalised (docs/security.md): the
    composed and decomposed spellings of "café" are two expectations."""
    composed = unicodedata.normalize("NFC", "caf\u00e9")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed and len(decomposed.encode()) == len(composed.encode()) + 1
    run = fresh_run()
    store.add_expectations(run, [AuditExpectation(run, "d", composed, 60_000)])
    assert store.add_ack(run, DomainAck(run, "d", decomposed)) == "DRIFT"
    assert store.add_expectations(run, [AuditExpectation(run, "d", decomposed, 60_000)]) == 1
    statuses = {e.action: e.status for e in store.get_expectations(run)}
    assert statuses == {composed: AuditStatus.PENDING, decomposed: AuditStatus.ACKED}


def is_count(value: Any, minimum: int, maximum: int = 2**62) -> bool:
    """An int (not a bool) in ``minimum..maximum`` (beyond 2**62 Redis may refuse it)."""
    return type(value) is int and minimum <= value <= maximum


def is_due_bound(value: Any) -> bool:
    """None, an int (not a bool), or an aware datetime."""
    return (
        value is None
        or type(value) is int
        or (isinstance(value, datetime) and value.tzinfo is not None)
    )


def as_epoch_ms(value: int | datetime) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else value


def is_run_id(value: Any) -> bool:
    """A UUID, or a text Python reads as one."""
    if isinstance(value, uuid.UUID):
        return True
    try:
        return isinstance(value, str) and uuid.UUID(value) is not None
    except ValueError:
        return False
