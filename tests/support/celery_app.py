"""The Celery app of the Celery tests, loaded by a real worker process:
``celery -A tests.support.celery_app worker --pool=solo``.

Broker and result backend: ``RAC_TEST_CELERY_BROKER`` (the test session's own
redis-server); the store: ``RAC_TEST_STORE_URL`` with ``RAC_TEST_STORE_PREFIX``.
Every run of a task is also appended to the Redis list ``<prefix>:runs:<task id>``,
so a test can see how often a task ran.
"""

from __future__ import annotations

import os
from typing import Any

import redis
from celery import Celery

from rac_store import AuditStore
from rac_store.contrib.celery import install

BROKER = os.environ["RAC_TEST_CELERY_BROKER"]
PREFIX = os.environ.get("RAC_TEST_STORE_PREFIX", "celerytest")

app = Celery("rac_celery_test", broker=BROKER, backend=BROKER)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
store = AuditStore.from_url(os.environ["RAC_TEST_STORE_URL"], prefix=PREFIX, metrics=False)
install(app, store)
_runs = redis.Redis.from_url(os.environ["RAC_TEST_STORE_URL"])


def _ran(task: Any) -> int:
    """Note one run of ``task``; how many runs its id has had."""
    return int(_runs.rpush(f"{PREFIX}:runs:{task.request.id}", task.request.retries))


@app.task(bind=True)
def ok(self: Any, value: str) -> str:
    _ran(self)
    return value.upper()


@app.task(bind=True)
def boom(self: Any) -> None:
    _ran(self)
    raise ValueError("engine down")


@app.task(bind=True, max_retries=3)
def flaky(self: Any, failures: int) -> str:
    """Fails its first ``failures`` runs (then is retried), then succeeds."""
    _ran(self)
    if self.request.retries < failures:
        raise self.retry(exc=ConnectionError(f"try {self.request.retries}"), countdown=0.05)
    return "finally"
