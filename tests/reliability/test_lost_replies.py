"""Issue 6, item 1: retries never double-apply.

A client with a tiny ``socket_timeout`` gives up while the server is stalled;
redis-py and the store's RetryPolicy re-send. With ``DEBUG SLEEP`` the first
send still runs when the server wakes (the reply is lost, the script runs
twice); with ``CLIENT PAUSE`` it never runs. Either way N logical calls must
leave exactly what N calls leave on a server without faults: the same acks,
the same statuses, and the same outcomes reported to the caller.

The asyncio store's auto-pipelined round trip meets the same stalls: concurrent
callers share one merged call, re-sent with the same call token after the lost
reply; each caller must still get the first run's outcome (never DUPLICATE).
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rac_store import (
    AckOutcome,
    AckStatus,
    AsyncAuditReconciler,
    AsyncAuditStore,
    AuditExpectation,
    AuditReconciler,
    AuditStatus,
    AuditStore,
    DomainAck,
    RetryPolicy,
    codec,
    create_domain_ack,
    create_run_expectations,
)
from rac_store.connect import async_client_from_url
from rac_store.core import CommandCall, parse_outcomes
from rac_store.findings import parse_event
from rac_store.keys import KeySpace
from rac_store.scripts import Script, load_scripts

from ..support.async_facade import LoopThread, SyncFacade
from ..support.fault_proxy import Arming, FaultProxy, runs_script
from ..support.faults import connections_received, script_executions, stalled
from ..support.redis_server import RedisServer
from ..support.snapshot import snapshot as server_state

Op = Callable[[AuditStore], Any]

STALL_SECONDS = 0.15
TIMEOUT_SECONDS = 0.04
PATIENT = RetryPolicy(attempts=12, base_delay=0.02, max_delay=0.1)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """A private server: stalling it must not disturb other tests."""
    srv = RedisServer().start()
    yield srv
    srv.cleanup()


def _ack(run: uuid.UUID, domain: str, action: str, **fields: Any) -> DomainAck:
    return DomainAck(run, domain, action, **fields)


def scenario(runs: list[uuid.UUID]) -> list[tuple[str, Op]]:
    """A fixed sequence of logical calls covering every write and every ack outcome."""
    ops: list[tuple[str, Op]] = []
    for run in runs:
        exps = create_run_expectations(run, run_timeout_ms=600_000)
        ok = _ack(run, "incidents", "create_incident")
        failed = _ack(run, "policies", "evaluate_policy", status=AckStatus.FAILED, error="x")
        retry_ok = _ack(run, "policies", "evaluate_policy")
        drift = _ack(run, "ghost", "haunt")
        batch = [_ack(run, "logs", "start_trace"), drift, _ack(run, "logs", "extra")]
        ops += [
            ("add_expectations", lambda s, r=run, e=exps: s.add_expectations(r, e)),
            ("add_expectations again", lambda s, r=run, e=exps: s.add_expectations(r, e)),
            ("add_ack", lambda s, r=run, a=ok: s.add_ack(r, a)),
            ("add_ack failed", lambda s, r=run, a=failed: s.add_ack(r, a)),
            ("add_ack retry ok", lambda s, r=run, a=retry_ok: s.add_ack(r, a)),
            ("add_ack drift", lambda s, r=run, a=drift: s.add_ack(r, a)),
            ("add_acks batch", lambda s, r=run, b=batch: s.add_acks(r, [*b, b[0]])),
            ("add_ack resent by user", lambda s, r=run, a=ok: s.add_ack(r, a)),
            (
                "update_expectation_status",
                lambda s, r=run: s.update_expectation_status(
                    r, "orchestrator", "finalize_run", AuditStatus.MISSING
                ),
            ),
        ]
    ops.append(("clear_run", lambda s, r=runs[-1]: s.clear_run(r)))
    return ops


def snapshot(store: AuditStore, runs: list[uuid.UUID]) -> list[Any]:
    """Everything the store holds for ``runs``: acks byte-exact, statuses, late marks."""
    state = []
    for run in runs:
        acks = [codec.encode(ack) for ack in store.get_acks(run)]
        exps = [(e.key(), e.status, e.late) for e in store.get_expectations(run)]
        state.append((acks, exps, store.load_from_redis(run)))
    state.append(sorted(store.get_pending_run_ids()))
    return state


def run_scenario(
    store: AuditStore, ops: list[tuple[str, Op]], fault: Callable[[], Any] | None
) -> list[Any]:
    results = []
    for _name, op in ops:
        if fault is None:
            results.append(op(store))
        else:
            with fault():
                results.append(op(store))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sleep", "pause"])
def test_timeouts_and_resends_never_double_apply(server: RedisServer, how: str) -> None:
    admin = server.client()
    admin.flushall()
    runs = [uuid.uuid4() for _ in range(3)]
    ops = scenario(runs)

    reference = AuditStore(server.client(), prefix="ref")
    expected = run_scenario(reference, ops, fault=None)
    expected_state = snapshot(reference, runs)

    impatient = server.client(socket_timeout=TIMEOUT_SECONDS)
    store = AuditStore(impatient, prefix="rac", retry=PATIENT)
    store.add_ack(runs[0], _ack(runs[0], "warm", "up"))  # load the scripts before faults
    store.clear_run(runs[0])
    executions_before = script_executions(admin)
    connections_before = connections_received(admin)

    got = run_scenario(store, ops, fault=lambda: stalled(admin, how, STALL_SECONDS))

    executions = script_executions(admin) - executions_before
    reconnects = connections_received(admin) - connections_before
    print(
        f"\n[lost replies/{how}] logical calls={len(ops)} script executions={executions}"
        f" reconnects={reconnects}"
    )
    assert snapshot(store, runs) == expected_state
    names = [name for name, _ in ops]
    undercounted = 0
    for name, mine, theirs in zip(names, got, expected, strict=True):
        if name.startswith(("add_ack", "update")):
            assert mine == theirs, name  # a re-send reports the first run's outcome
        else:  # counts of what *this* send changed (docs/reliability.md: known property)
            assert 0 <= int(mine) <= int(theirs), name
            undercounted += int(mine) != int(theirs)
    print(f"[lost replies/{how}] counts reported lower after a lost reply: {undercounted}")
    assert reconnects >= len(ops)  # every call timed out at least once
    if how == "sleep":
        assert executions > len(ops)  # scripts really ran more than once per call
    else:
        assert executions == len(ops)  # paused sends were dropped, never ran


def test_resent_call_reports_first_outcome_but_new_call_is_duplicate(store: AuditStore) -> None:
    """The call token: the same ScriptCall re-sent vs the same ack in a new call."""
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    ack = create_domain_ack(run, "incidents", "create_incident")
    other = create_domain_ack(run, "ghost", "haunt")
    call = store.core.add_acks(run, [ack, other, ack])
    first = store.execute(call)
    resent = store.execute(call)  # what a retry after a lost reply sends
    assert first == resent == [0, 2, 1]  # recorded, drift, in-call duplicate
    assert store.add_acks(run, [ack, other]) == ["DUPLICATE", "DUPLICATE"]
    assert len(store.get_acks(run)) == 2


def test_a_repeat_in_a_call_of_two_acks_is_a_duplicate(store: AuditStore) -> None:
    """The smallest call that can repeat an ack id (add_acks keeps its table of the ack ids
    met only for a run with more than one ack in the call)."""
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    ack = create_domain_ack(run, "incidents", "create_incident")
    call = store.core.add_acks(run, [ack, ack])
    assert store.execute(call) == store.execute(call) == [0, 1]
    assert len(store.get_acks(run)) == 1


def test_redis_py_reports_timeouts_as_retryable(server: RedisServer) -> None:
    """The premise: a stalled server surfaces as redis TimeoutError (which the store retries)."""
    admin = server.client()
    impatient = server.client(socket_timeout=TIMEOUT_SECONDS, retry=None)
    impatient.ping()
    with stalled(admin, "sleep", STALL_SECONDS), pytest.raises(redis.TimeoutError):
        impatient.ping()


# -- every script, its reply lost on the wire ---------------------------------------------
# Issue 15, item 3. A TCP proxy (tests/support/fault_proxy.py) forwards the store's
# traffic and drops the reply of one script call that ran, closing the connection: the
# store re-sends on a new one. The proxy snapshots the server right after the lost
# execution and right after the re-send (before its reply is forwarded, so nothing else
# ran in between): the two states must be equal. Sync store, and the asyncio store
# (auto-pipelined acks included), both with clients made from the proxy's URL.


@dataclass(frozen=True)
class LostReplyCase:
    """One script's scenario: the state it acts on, the call whose reply is lost, the checks."""

    script: Script
    prepare: Callable[[Any, uuid.UUID], Any]
    act: Callable[[Any, Any, uuid.UUID], Any]
    check: Callable[[Any, Arming, Any, uuid.UUID, Callable[[], list[tuple[str, str]]]], None]
    options: tuple[tuple[str, Any], ...] = ()
    """Store options (one shard, where the call runs its script once per shard)."""
    executions: int = 2
    """Runs of the script from the lost one on: 2, or more when the call runs it again."""


def _declare(store: Any, run: uuid.UUID, deadline_ms: int = 600_000) -> None:
    store.add_expectations(run, create_run_expectations(run, run_timeout_ms=deadline_ms))


def _overdue(store: Any, run: uuid.UUID) -> None:
    store.add_expectations(run, [AuditExpectation(run, "late", f"a{i}", 0) for i in range(3)])
    time.sleep(0.005)


def _nothing(store: Any, run: uuid.UUID) -> None:
    return None


def _outcomes(arming: Arming) -> list[str]:
    """The ack outcomes the lost (first) execution replied."""
    return [o.value for o in parse_outcomes(arming.replies[0])]


def _check_acks(result: Any, arming: Arming, store: Any, run: uuid.UUID, events: Any) -> None:
    got = [result] if isinstance(result, str) else list(result)
    assert got == _outcomes(arming)  # the re-send reports what the lost reply said
    assert got[0] == "RECORDED"


def _check_count(result: Any, arming: Arming, store: Any, run: uuid.UUID, events: Any) -> None:
    # add_expectations / clear_run report what *this* send changed (docs/reliability.md)
    assert 0 <= int(result) <= int(arming.replies[0])


def _check_status(result: Any, arming: Arming, store: Any, run: uuid.UUID, events: Any) -> None:
    assert result is True and arming.replies[0] == 1
    assert events().count(("MISSING", "status")) == 1


def _check_read(result: Any, arming: Arming, store: Any, run: uuid.UUID, events: Any) -> None:
    assert [(e.key(), e.status) for e in result] == [
        (e.key(), e.status) for e in store.get_expectations(run)
    ]


def _check_snapshot(result: Any, arming: Arming, store: Any, run: uuid.UUID, events: Any) -> None:
    assert len(result.expectations) == 4 and result.acks_count == 1


def _check_sweep(result: Any, arming: Arming, store: Any, run: uuid.UUID, events: Any) -> None:
    assert events().count(("MISSING", "sweep")) == 3  # marked once, by the lost execution
    assert len(result.missing) in (0, 3)  # the re-send finds them marked already


def _check_end(result: Any, arming: Arming, store: Any, run: uuid.UUID, events: Any) -> None:
    assert result.status == "STALE"
    assert events().count(("MISSING", "end")) == 4  # all four were still pending
    assert events().count(("STALE", "end")) == 1


def _check_finding(result: Any, arming: Arming, store: Any, run: uuid.UUID, events: Any) -> None:
    assert result.status == "INCOMPLETE"
    assert events().count(("INCOMPLETE", "reconcile")) == 1


def _check_opened(result: Any, arming: Arming, store: Any, run: uuid.UUID, events: Any) -> None:
    assert arming.replies[0] == 16  # the shard count recorded


class BlockingReconciler(SyncFacade):
    """An AsyncAuditReconciler behind the sync facade, its consumers too."""

    def consumer(self, group: str, name: str) -> Any:
        return BlockingCalls(self.async_store.consumer(group, name), self._runner)


class BlockingCalls:
    """Every method of ``target`` whose call gives an awaitable, run to its result."""

    def __init__(self, target: Any, runner: LoopThread) -> None:
        self._target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)

        def blocking(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return self._runner.run(result) if inspect.isawaitable(result) else result

        return blocking


def _findings_of_a_run(store: Any, run: uuid.UUID) -> None:
    """Two events of ``run`` in its shard's stream: a MISSING mark and the run's verdict."""
    store.add_expectations(run, [AuditExpectation(run, "logs", "start_trace", 600_000)])
    store.update_expectation_status(run, "logs", "start_trace", AuditStatus.MISSING)


def _delivered(store: Any, run: uuid.UUID) -> None:
    """The run's events delivered to consumer c of group g (pending there)."""
    _findings_of_a_run(store, run)
    got = AuditReconciler(store, metrics=False).consumer("g", "c").read(count=100)
    assert [f.run_id for f in got] == [str(run)] * 2


def _read_group(store: Any, rec: Any, run: uuid.UUID) -> list[str]:
    consumer = rec.consumer("g", "c")
    read = [f.stream_id for f in consumer.read(count=100) if f.run_id == str(run)]
    return read + [f.stream_id for f in consumer.claim(0) if f.run_id == str(run)]


def _check_delivery(result: Any, arming: Arming, store: Any, run: uuid.UUID, events: Any) -> None:
    # the lost reply's events stay pending for the consumer: claim hands them out again
    assert len(set(result)) == 2


def _dead_letter(store: Any, rec: Any, run: uuid.UUID) -> Any:
    consumer = rec.consumer("g", "c")
    first = consumer.claim(0)[0]
    return consumer, first, consumer.dead_letter(first, "webhook down", 3)


def _check_dead_letter(
    result: Any, arming: Arming, store: Any, run: uuid.UUID, events: Any
) -> None:
    consumer, moved, dead_id = result
    key = store.core.keys.dead_letters(store.core.keys.shard_of(str(run)))
    (dead,) = store.execute(CommandCall((("XRANGE", key, "-", "+"),), "test"))
    assert [fields[b"dead_stream_id"] for _, fields in dead] == [moved.stream_id.encode()]
    assert dead_id is None  # the re-send found it acked already: moved once, by the lost run
    assert moved.stream_id not in {f.stream_id for f in consumer.claim(0)}  # acked in the group


LOST_REPLY_CASES: dict[str, LostReplyCase] = {
    "init_meta": LostReplyCase(Script.INIT_META, _nothing, lambda s, r, run: s, _check_opened),
    "add_expectations": LostReplyCase(
        Script.ADD_EXPECTATIONS, _nothing, lambda s, r, run: _declare(s, run) or 4, _check_count
    ),
    "add_ack": LostReplyCase(
        Script.ADD_ACKS,
        _declare,
        lambda s, r, run: s.add_ack(run, create_domain_ack(run, "incidents", "create_incident")),
        _check_acks,
    ),
    "add_acks": LostReplyCase(
        Script.ADD_ACKS,
        _declare,
        lambda s, r, run: s.add_acks(run, _batch_with_drift_and_repeat(run)),
        _check_acks,
    ),
    "update_status": LostReplyCase(
        Script.UPDATE_STATUS,
        _declare,
        lambda s, r, run: s.update_expectation_status(
            run, "logs", "start_trace", AuditStatus.MISSING
        ),
        _check_status,
    ),
    "clear_run": LostReplyCase(
        Script.CLEAR_RUN, _declare, lambda s, r, run: s.clear_run(run), _check_count
    ),
    "read_expectations": LostReplyCase(
        Script.READ_EXPECTATIONS, _declare, lambda s, r, run: s.get_expectations(run), _check_read
    ),
    "read_run": LostReplyCase(
        Script.READ_RUN,
        lambda s, run: (_declare(s, run), s.add_ack(run, create_domain_ack(run, "x", "y"))),
        lambda s, r, run: r.snapshot(run),
        _check_snapshot,
    ),
    "sweep_run": LostReplyCase(
        Script.SWEEP_RUN, _overdue, lambda s, r, run: r.sweep(), _check_sweep
    ),
    "end_run": LostReplyCase(
        Script.END_RUN, _declare, lambda s, r, run: r.end_run(run), _check_end
    ),
    "read_group": LostReplyCase(
        Script.READ_GROUP,
        _findings_of_a_run,
        _read_group,
        _check_delivery,
        (("shards", 1),),
        executions=3,  # the group is made (its reply lost, made again), then read
    ),
    "dead_letter": LostReplyCase(
        Script.DEAD_LETTER, _delivered, _dead_letter, _check_dead_letter, (("shards", 1),)
    ),
    "record_finding": LostReplyCase(
        Script.RECORD_FINDING,
        lambda s, run: (_declare(s, run), _overdue(s, run)),
        lambda s, r, run: r.reconcile(run),
        _check_finding,
    ),
}


def _batch_with_drift_and_repeat(run: uuid.UUID) -> list[DomainAck]:
    ok = create_domain_ack(run, "incidents", "create_incident")
    return [ok, create_domain_ack(run, "ghost", "haunt"), ok]


def test_every_script_has_a_lost_reply_case() -> None:
    assert {case.script for case in LOST_REPLY_CASES.values()} == set(Script)


@pytest.fixture
def proxy(server: RedisServer) -> Iterator[FaultProxy]:
    fault = FaultProxy(server.port)
    yield fault
    fault.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", list(LOST_REPLY_CASES))
def test_a_lost_reply_of_every_script_leaves_the_state_of_one_run(
    server: RedisServer, proxy: FaultProxy, loop_thread: LoopThread, name: str, mode: str
) -> None:
    case = LOST_REPLY_CASES[name]
    admin = server.client()
    admin.flushall()
    sha = load_scripts(embedded=False)[case.script].sha
    retry = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)

    options = dict(case.options)

    def open_store() -> Any:
        if mode == "sync":
            return AuditStore.from_url(proxy.url, retry=retry, **options)
        client = lambda: async_client_from_url(proxy.url)  # noqa: E731
        return SyncFacade.open(loop_thread, client, retry=retry, **options)

    def reconciler_of(store: Any) -> Any:
        if mode == "sync":
            return AuditReconciler(store)
        return BlockingReconciler(AsyncAuditReconciler(store.async_store), loop_thread)

    run = uuid.uuid4()
    events_key = KeySpace("rac", options.get("shards", 16)).for_run(str(run)).findings

    def events() -> list[tuple[str, str]]:
        found = [parse_event(fields) for _, fields in admin.xrange(events_key)]
        return [(f.type.value, f.source) for f in found if f.run_id == str(run)]

    if case.script is Script.INIT_META:
        arming = proxy.lose_reply(runs_script(sha), lambda: server_state(admin))
        store = open_store()
    else:
        store = open_store()
        case.prepare(store, run)
        arming = proxy.lose_reply(runs_script(sha), lambda: server_state(admin))
    try:
        result = case.act(store, reconciler_of(store), run)
        proxy.disarm()
        assert proxy.cuts == 1 and arming.executions == case.executions  # ran, lost, ran again
        first, after_resend = arming.states[:2]
        assert after_resend == first, name  # the re-send changed nothing
        case.check(result, arming, store, run, events)
    finally:
        proxy.disarm()
        store.close()
    print(f"\n[lost reply/{mode}] {name}: 2 executions, state unchanged by the re-send")


# -- the asyncio auto-pipeline's round trip ---------------------------------------
def the_acks(run: uuid.UUID) -> tuple[list[DomainAck], list[AckOutcome]]:
    """Four acks with four different first outcomes (a DUPLICATE would be a double count)."""
    acks = [
        create_domain_ack(run, "d", "on_time"),
        create_domain_ack(run, "d", "overdue"),
        create_domain_ack(run, "d", "undeclared"),
        create_domain_ack(run, "d", "fails", error="boom"),
    ]
    return acks, [AckOutcome.RECORDED, AckOutcome.LATE, AckOutcome.DRIFT, AckOutcome.RECORDED]


@pytest.mark.parametrize("how", ["sleep", "pause"])
def test_a_lost_round_trip_reply_is_resent_and_reports_the_first_outcomes(
    server: RedisServer, how: str
) -> None:
    admin = server.client()
    admin.flushall()
    run = uuid.uuid4()
    acks, first_outcomes = the_acks(run)
    counts: dict[str, int] = {}

    async def main() -> tuple[list[AckOutcome], list[DomainAck], int]:
        client = redis.asyncio.Redis(
            port=server.port, socket_timeout=TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0)
        )
        async with AsyncAuditStore(client, shards=1, retry=PATIENT) as store:
            await store.add_expectations(
                run,
                [
                    AuditExpectation(run, "d", "on_time", 600_000),
                    AuditExpectation(run, "d", "overdue", 0),
                    AuditExpectation(run, "d", "fails", 600_000),
                ],
            )
            await store.add_ack(run, DomainAck(run, "warm", "up"))  # add_acks is cached
            pipeline = store.autopipeline
            assert pipeline is not None
            trips = pipeline.round_trips
            counts["executions"] = script_executions(admin)
            counts["connections"] = connections_received(admin)
            with stalled(admin, how, STALL_SECONDS):
                outcomes = await asyncio.gather(*(store.add_ack(run, ack) for ack in acks))
            counts["executions"] = script_executions(admin) - counts["executions"]
            counts["connections"] = connections_received(admin) - counts["connections"]
            return list(outcomes), await store.get_acks(run), pipeline.round_trips - trips

    outcomes, stored, trips = asyncio.run(main())
    print(f"\n[async lost replies/{how}] {counts}")
    assert trips == 1  # the four callers shared one round trip
    assert counts["connections"] >= 1  # the round trip timed out: its connection was dropped
    if how == "sleep":
        assert counts["executions"] >= 2  # the first send ran after all, its reply lost
    else:
        assert counts["executions"] == 1  # the paused send never ran; the re-send ran once
    assert outcomes == first_outcomes
    assert [a.id for a in stored[1:]] == [a.id for a in acks]
