"""``add_ack`` beside the writes users would pick instead, in one run on one redis-server.

Every contender records one outcome per call, on a connection of its own, timed call
by call in interleaved blocks (:func:`benchmarks.measure.interleaved`: the order
rotates, so a machine that gets busier or quieter weighs on all alike); each first
sends one untimed block (connections open, scripts loaded):

* ``PING`` and ``SET`` (an 80-byte value to a new key): the floors, through redis-py;
* ``add_ack``: :class:`~rac_store.AuditStore`, each ack answering a PENDING expectation;
* RQ job finish: what rq writes first when a job succeeds (``Job._handle_success``):
  ``job.set_status(FINISHED)`` and ``job.save(include_meta=False, include_result=False)``
  in one ``MULTI``/``EXEC`` pipeline, with rq's own Job API on jobs it enqueued;
* RQ worker: everything rq's worker writes when a job succeeds,
  ``Worker.handle_job_success`` on a job prepared as rq prepares one (``WATCH`` of its
  dependents, their read, then one ``MULTI``/``EXEC`` with the worker's counters, the
  status, the job hash, the result stream, the finished registry and the clean-ups);
* Celery: ``celery.backends.redis.RedisBackend.store_result(task_id, result, SUCCESS)``
  of the installed Celery (a ``GET`` of the task's current state, then ``SETEX`` +
  ``PUBLISH`` in one ``MULTI``/``EXEC``);
* the original store's design: :class:`benchmarks.baseline.LegacyAuditStore`'s
  ``add_ack`` into runs of four acks (the whole JSON list rewritten with ``SETEX``).

Each figure is ``add_ack``'s p50 over a contender's (goals: at most 0.9 of RQ's job
finish, 0.4 of Celery's ``store_result``); the detail of the first holds every
contender's p50 and p99. Every key written has the run's prefix in its name (rq's
queue, job and worker names, Celery's task ids), so ``Bench.cleanup`` finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

try:
    from celery import Celery
    from rq import Queue, Worker
    from rq.job import Job, JobStatus
    from rq.registry import StartedJobRegistry
    from rq.utils import now
except ImportError as missing:  # the runner says what to install rather than a bare name
    raise ImportError(
        f"the benchmark runner's peers need rq and Celery ({missing}):"
        " pip install -e '.[benchmarks]'"
    ) from missing

from .context import Bench
from .measure import interleaved, percentile, time_each
from .report import Figure, Goal
from .workload import pending_acks

SET_VALUE = b"x" * 80
ORIGINAL_ACKS_PER_RUN = 4
"""The original design's runs hold the four standard actions' acks."""
RESULT = {"result_id": "INC-42"}
"""What the RQ and Celery jobs return (stored as their result)."""


@dataclass
class Contender:
    """One kind of write: how to send one item, and its items (one per timed call)."""

    name: str
    label: str
    send: Callable[[Any], Any]
    items: list[Any]
    done: Callable[[], Any] = field(default=lambda: None)
    """Called once measured (rq's queues leave the set of known queues)."""


def _floors(bench: Bench, count: int) -> Iterator[Contender]:
    ping_client, set_client = bench.client(), bench.client()
    yield Contender("ping", "PING", lambda _: ping_client.ping(), [None] * count)
    keys = [f"{bench.namespace('set')}:{i}" for i in range(count)]
    yield Contender("set", "SET, 80 B, new key", lambda key: set_client.set(key, SET_VALUE), keys)


def _add_ack(bench: Bench, count: int) -> Contender:
    store = bench.store("peer")
    acks = pending_acks(store, count)
    return Contender(
        "add_ack", "AuditStore.add_ack", lambda item: store.add_ack(item.run_id, item.ack), acks
    )


def _rq_jobs(bench: Bench, name: str, count: int) -> tuple[Queue, list[Job]]:
    """``count`` jobs rq enqueued on a queue of their own (their function never runs)."""
    prefix = bench.namespace(name)
    queue = Queue(f"{prefix}-queue", connection=bench.client())
    made: list[Job] = []
    for start in range(0, count, 500):
        data = [
            Queue.prepare_data("benchmarks.peers.job_body", (i,), job_id=f"{prefix}-job-{i}")
            for i in range(start, min(count, start + 500))
        ]
        made += queue.enqueue_many(data)
    return queue, made


def job_body(index: int) -> dict[str, str]:
    """What the benchmark's rq jobs would run (they are never run)."""
    return {"result_id": f"INC-{index}"}


def _rq_finish(job: Job) -> None:
    """The first writes of ``Job._handle_success``: status and job hash, one transaction."""
    with job.connection.pipeline() as pipe:
        job.set_status(JobStatus.FINISHED, pipeline=pipe)
        job.save(pipeline=pipe, include_meta=False, include_result=False)
        pipe.execute()


def _rq_finish_contender(bench: Bench, count: int) -> Contender:
    queue, jobs = _rq_jobs(bench, "rqfinish", count)
    return Contender(
        "rq_finish", "RQ job finish (set_status + save)", _rq_finish, jobs, queue.delete
    )


def _rq_worker_contender(bench: Bench, count: int) -> Contender:
    """Jobs started by a worker as rq starts them; timed: the worker's success handling."""
    queue, jobs = _rq_jobs(bench, "rqworker", count)
    worker = Worker([queue], connection=bench.client(), name=f"{queue.name}-worker")
    started = StartedJobRegistry(queue=queue)
    prepared = []
    for job in jobs:
        worker.prepare_job_execution(job)
        execution = worker.prepare_execution(job)
        job.ended_at = now()
        job._result = RESULT
        prepared.append((job, execution))

    def finish(item: tuple[Job, Any]) -> None:
        job, execution = item
        worker.handle_job_success(job, queue, started, execution)

    return Contender("rq_worker", "RQ Worker.handle_job_success", finish, prepared, queue.delete)


def _celery_contender(bench: Bench, count: int) -> Contender:
    app = Celery("rac-store-bench", backend=bench.url, set_as_current=False)
    backend = app.backend
    prefix = bench.namespace("celery")
    ids = [f"{prefix}-{i}" for i in range(count)]
    return Contender(
        "celery",
        "Celery RedisBackend.store_result",
        lambda task_id: backend.store_result(task_id, RESULT, "SUCCESS"),
        ids,
    )


def _original_contender(bench: Bench, count: int) -> Contender:
    legacy = bench.legacy("peerold")
    acks = pending_acks(None, count, per_run=ORIGINAL_ACKS_PER_RUN)
    return Contender(
        "original",
        "original design (SETEX of the JSON list)",
        lambda item: legacy.add_ack(item.run_id, item.ack),
        acks,
    )


def contenders(bench: Bench, count: int) -> list[Contender]:
    """Every contender with ``count`` items (add_ack first: the others are compared to it)."""
    return [
        _add_ack(bench, count),
        *_floors(bench, count),
        _rq_finish_contender(bench, count),
        _rq_worker_contender(bench, count),
        _celery_contender(bench, count),
        _original_contender(bench, count),
    ]


def measure(bench: Bench) -> dict[str, dict[str, Any]]:
    """p50 and p99 (µs) of every contender, from interleaved blocks."""
    per, blocks = bench.sizes.peer_block, bench.sizes.peer_blocks
    every = contenders(bench, per * (blocks + 1))
    for contender in every:  # warm-up: connections, scripts, caches
        for item in contender.items[:per]:
            contender.send(item)

    def phase(contender: Contender) -> Callable[[int], list[float]]:
        items = contender.items[per:]
        return lambda b: time_each(contender.send, items[b * per : (b + 1) * per])

    samples = interleaved(blocks, [phase(c) for c in every])
    for contender in every:
        contender.done()
    return {
        c.name: {
            "label": c.label,
            "p50_us": percentile(s, 0.5),
            "p99_us": percentile(s, 0.99),
            "samples": len(s),
        }
        for c, s in zip(every, samples, strict=True)
    }


GOALS = {"rq_finish": Goal("<=", 0.9), "celery": Goal("<=", 0.4)}


def figures(bench: Bench) -> list[Figure]:
    """add_ack's p50 over each contender's, in one run on one server."""
    found = measure(bench)
    ack = found["add_ack"]
    result = []
    for name, stats in found.items():
        if name == "add_ack":
            continue
        result.append(
            Figure(
                f"peer_{name}",
                f"add_ack p50 / {stats['label']} p50",
                ack["p50_us"],
                stats["p50_us"],
                "us",
                GOALS.get(name),
                {"add_ack_p99_us": ack["p99_us"], "their_p99_us": stats["p99_us"]},
            )
        )
    result[0].detail["contenders"] = found
    return result


def summary(found: dict[str, dict[str, Any]]) -> list[str]:
    """The peers as a Markdown table: p50, p99, over PING, and add_ack over each."""
    ping, ack = found["ping"]["p50_us"], found["add_ack"]["p50_us"]
    lines = [
        "| one write | p50 | p99 | p50 / PING p50 | add_ack p50 / its p50 |",
        "|---|---:|---:|---:|---:|",
    ]
    for stats in found.values():
        lines.append(
            f"| {stats['label']} | {stats['p50_us']:,.1f} µs | {stats['p99_us']:,.1f} µs"
            f" | {stats['p50_us'] / ping:.2f} | {ack / stats['p50_us']:.2f} |"
        )
    return lines
