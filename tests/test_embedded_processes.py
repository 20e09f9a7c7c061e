"""An embedded store is never used from another process silently (real processes).

Forked children, spawn and forkserver workers, stores pickled to a worker, and a
fork while another thread writes: each either refuses with
EmbeddedStoreInOtherProcessError, naming the fix, or works on a store it owns.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor

import pytest

from rac_store import (
    AsyncAuditStore,
    AuditStore,
    EmbeddedStoreInOtherProcessError,
    create_run_expectations,
)

from .support import embedded_workers as workers

FIX = "rac-store serve"
TIMEOUT = 60


def _declared(store: AuditStore) -> str:
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    return str(run)


def test_a_fork_child_refuses_the_parents_module_store() -> None:
    run = _declared(workers.STORE)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        future = pool.submit(workers.ack_on_module_store, run)
        with pytest.raises(EmbeddedStoreInOtherProcessError, match="a fork of it") as refused:
            future.result(timeout=TIMEOUT)
    assert FIX in str(refused.value) and "RAC_REDIS_URL" in str(refused.value)
    assert workers.STORE.get_acks(run) == []  # nothing reported as RECORDED was lost
    assert len(workers.STORE.get_expectations(run)) == 4  # the parent's store still works


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_worker_that_imports_a_module_store_refuses(method: str) -> None:
    run = _declared(workers.STORE)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method)) as pool:
        module_store = pool.submit(workers.ack_on_module_store, run)
        with pytest.raises(EmbeddedStoreInOtherProcessError, match="worker started by"):
            module_store.result(timeout=TIMEOUT)
        own_default = pool.submit(workers.ack_on_default_store, run)
        with pytest.raises(EmbeddedStoreInOtherProcessError, match=FIX):
            own_default.result(timeout=TIMEOUT)
        private = pool.submit(workers.private_store_round_trip)
        assert private.result(timeout=TIMEOUT) == 1  # an explicit embedded client is private
    assert workers.STORE.get_acks(run) == []


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_an_embedded_store_is_not_sent_to_a_worker(method: str) -> None:
    store = AuditStore()
    run = _declared(store)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method)) as pool:
        future = pool.submit(workers.ack_on_given_store, store, run)
        with pytest.raises(EmbeddedStoreInOtherProcessError, match="cannot be sent"):
            future.result(timeout=TIMEOUT)
    with pytest.raises(EmbeddedStoreInOtherProcessError, match=FIX):
        pickle.dumps(AsyncAuditStore())


def test_a_fork_while_another_thread_writes_never_hangs() -> None:
    store = AuditStore()
    run = _declared(store)
    stop = threading.Event()
    writer = threading.Thread(target=workers.write_in_a_loop, args=(store, stop))
    writer.start()
    fork = multiprocessing.get_context("fork")
    codes = []
    try:
        for _ in range(5):
            child = fork.Process(target=workers.ack_and_exit, args=(store, run))
            child.start()
            child.join(TIMEOUT)
            if child.is_alive():
                child.kill()
                child.join()
                codes.append("hung")
            else:
                codes.append(child.exitcode)
    finally:
        stop.set()
        writer.join(TIMEOUT)
    assert codes == [workers.REFUSED] * 5
    assert store.get_acks(run) == []


def test_an_async_store_refuses_in_a_fork_child() -> None:
    store = AsyncAuditStore()

    async def declare() -> str:
        run = uuid.uuid4()
        await store.add_expectations(run, create_run_expectations(run))
        return str(run)

    run = asyncio.run(declare())
    child = multiprocessing.get_context("fork").Process(
        target=workers.ack_and_exit, args=(store, run)
    )
    child.start()
    child.join(TIMEOUT)
    assert child.exitcode == workers.REFUSED
