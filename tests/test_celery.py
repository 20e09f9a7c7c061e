"""rac_store.contrib.celery with a real Celery worker process (``--pool=solo``) on the test
session's redis-server as broker and result backend (no eager mode)."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from rac_store import AckStatus, AuditExpectation, AuditStatus, AuditStore, DomainAck
from rac_store.contrib.celery import HEADER, ack_id, audit_headers
from rac_store.errors import InvalidInputError

from .support.cli import stop
from .support.redis_server import RedisServer

pytestmark = [pytest.mark.redis_only, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).parent / "celery")
PREFIX = "celerytest"
TASKS = "tests.support.celery_app"
LONG = 600_000


@dataclass
class Worker:
    """The worker process, a client app that sends to its queue, and the store both use."""

    client: Celery
    queue: str
    store: AuditStore
    log: Path

    def send(
        self, name: str, *args: Any, headers: dict[str, Any] | None = None, **options: Any
    ) -> Any:
        return self.client.send_task(
            f"{TASKS}.{name}", args=args, headers=headers, queue=self.queue, **options
        )

    def barrier(self) -> None:
        """Wait until the worker has finished (signals included) what was sent before."""
        assert self.send("ok", "barrier").get(timeout=60) == "BARRIER"

    def runs(self, task_id: str) -> int:
        return int(self.store.client.llen(f"{PREFIX}:runs:{task_id}"))


@pytest.fixture(scope="module")
def worker(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    broker = f"redis://127.0.0.1:{redis_server.port}/1"
    queue = f"rac-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {
        **os.environ,
        "RAC_TEST_CELERY_BROKER": broker,
        "RAC_TEST_STORE_URL": redis_server.url,
        "RAC_TEST_STORE_PREFIX": PREFIX,
        "RAC_ALLOW_NO_PERSISTENCE": "true",  # the session's servers run without AOF
    }
    process = subprocess.Popen(
        [CELERY, "-A", TASKS, "worker", "--pool=solo", "-Q", queue, "--without-gossip",
         "--without-mingle", "--without-heartbeat", "-l", "info", "--logfile", str(log)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = Celery("rac_celery_test_client", broker=broker, backend=broker)
    store = AuditStore(
        redis_server.client(), prefix=PREFIX, metrics=False, allow_no_persistence=True
    )  # module-scoped: opened before the autouse fixture sets RAC_ALLOW_NO_PERSISTENCE
    running = Worker(client, queue, store, log)
    try:
        running.barrier()  # the worker is up and consuming
        yield running
    finally:
        stop(process, 30)
        client.close()
        store.close()


def declare(store: AuditStore, *actions: str) -> uuid.UUID:
    run = uuid.uuid4()
    store.add_expectations(run, [AuditExpectation(run, "tasks", a, LONG) for a in actions])
    return run


def acks_of(worker: Worker, run: uuid.UUID) -> list[DomainAck]:
    worker.barrier()
    return worker.store.get_acks(run)


def statuses(worker: Worker, run: uuid.UUID) -> dict[str, AuditStatus]:
    return {e.action: e.status for e in worker.store.get_expectations(run)}


def test_success_is_acked_once(worker: Worker) -> None:
    run = declare(worker.store, "ok")
    result = worker.send("ok", "x", headers=audit_headers(run, "tasks", "ok"))
    assert result.get(timeout=60) == "X"
    (ack,) = acks_of(worker, run)
    assert (ack.status, ack.error, ack.result_id) == (AckStatus.SUCCESS, None, result.id)
    assert ack.id == ack_id(result.id)
    assert ack.metadata == {
        "celery_task": f"{TASKS}.ok",
        "celery_task_id": result.id,
        "retries": 0,
    }
    assert statuses(worker, run) == {"ok": AuditStatus.ACKED}


def test_failure_is_acked_with_the_exception(worker: Worker) -> None:
    run = declare(worker.store, "boom")
    result = worker.send("boom", headers=audit_headers(run, "tasks", "boom"))
    with pytest.raises(ValueError, match="engine down"):
        result.get(timeout=60)
    (ack,) = acks_of(worker, run)
    assert (ack.status, ack.error, ack.is_success) == (
        AckStatus.FAILED,
        "ValueError: engine down",
        False,
    )
    assert statuses(worker, run) == {"boom": AuditStatus.FAILED}


def test_retries_ack_only_the_final_outcome(worker: Worker) -> None:
    run = declare(worker.store, "recovers", "gives_up")
    recovers = worker.send("flaky", 2, headers=audit_headers(run, "tasks", "recovers"))
    assert recovers.get(timeout=60) == "finally"
    gives_up = worker.send("flaky", 10, headers=audit_headers(run, "tasks", "gives_up"))
    with pytest.raises(ConnectionError, match="try 3"):
        gives_up.get(timeout=60)
    acks = {a.action: a for a in acks_of(worker, run)}
    assert worker.runs(recovers.id) == 3 and worker.runs(gives_up.id) == 4
    assert len(worker.store.get_acks(run)) == 2  # one per task, not one per run
    assert (acks["recovers"].status, acks["recovers"].metadata["retries"]) == (AckStatus.SUCCESS, 2)
    assert (acks["gives_up"].error, acks["gives_up"].metadata["retries"]) == (
        "ConnectionError: try 3",
        3,
    )
    # never FAILED on the way: the first tries of `recovers` acked nothing
    assert statuses(worker, run) == {"recovers": AuditStatus.ACKED, "gives_up": AuditStatus.FAILED}


def test_a_task_that_runs_twice_acks_once(worker: Worker) -> None:
    """A redelivered task (same task id) runs again; its ack has the same id: DUPLICATE."""
    run = declare(worker.store, "ok")
    task_id = str(uuid.uuid4())
    headers = audit_headers(run, "tasks", "ok")
    worker.send("ok", "a", headers=headers, task_id=task_id).get(timeout=60)
    worker.send("ok", "a", headers=headers, task_id=task_id).get(timeout=60)
    acks = acks_of(worker, run)
    assert worker.runs(task_id) == 2
    assert len(acks) == 1 and acks[0].id == ack_id(task_id)


def test_an_expired_task_acks_a_failure(worker: Worker) -> None:
    run = declare(worker.store, "late")
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    result = worker.send("ok", "x", headers=audit_headers(run, "tasks", "late"), expires=past)
    (ack,) = acks_of(worker, run)
    assert (ack.status, ack.error) == (AckStatus.FAILED, "TaskRevokedError: expired")
    assert ack.id == ack_id(result.id) and worker.runs(result.id) == 0


def test_tasks_without_the_headers_are_untouched(worker: Worker) -> None:
    run = declare(worker.store, "ok")
    result = worker.send("ok", str(run))  # no headers
    assert result.get(timeout=60) == str(run).upper()
    assert acks_of(worker, run) == []
    other = worker.send("ok", "y", headers={"something": "else"})
    assert other.get(timeout=60) == "Y"
    assert statuses(worker, run) == {"ok": AuditStatus.PENDING}


def test_audit_headers_validate_before_sending() -> None:
    run = uuid.uuid4()
    assert audit_headers(run, "d", "a") == {
        HEADER: {"run_id": str(run), "domain": "d", "action": "a"}
    }
    for bad in (("not-a-run", "d", "a"), (run, "d|x", "a"), (run, "d", "")):
        with pytest.raises(InvalidInputError):
            audit_headers(*bad)
