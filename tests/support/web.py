"""The dashboard under test: in process (Starlette's TestClient) or as ``rac-store web``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from rac_store import AsyncAuditStore, AuditExpectation, AuditStore, create_domain_ack
from rac_store.web.app import WebOptions, create_app

from .cli import stop
from .redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent.parent


@contextmanager
def in_process(async_client: Any, **options: Any) -> Iterator[Any]:
    """A TestClient of the dashboard over a read-only store on ``async_client``."""
    with warnings.catch_warnings():  # Starlette >= 1 would rather have httpx2; httpx works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    store = AsyncAuditStore(async_client, read_only=True, metrics=False, **options)
    with TestClient(create_app(store, WebOptions(keepalive_s=1.0))) as client:
        yield client


@dataclass
class WebProcess:
    """``rac-store web`` running in a subprocess: its base URL and its output so far."""

    process: subprocess.Popen[str]
    base: str

    def get(self, path: str, **options: Any) -> httpx.Response:
        """GET ``path`` of the running dashboard."""
        return httpx.get(self.base + path, timeout=10, **options)

    def output(self) -> str:
        """Everything it printed (after it stopped)."""
        out, err = self.process.communicate(timeout=15)
        return out + err


@contextmanager
def web_process(*args: str, env: dict[str, str] | None = None) -> Iterator[WebProcess]:
    """``python -m rac_store web ARGS --port <free>``, up (``/healthz`` answers) until the exit."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "rac_store", "web", "--port", str(port), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    web = WebProcess(process, f"http://127.0.0.1:{port}")
    try:
        _wait_until_up(web)
        yield web
    finally:
        if process.poll() is None:
            stop(process, 15)


def _wait_until_up(web: WebProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if web.process.poll() is not None:
            raise AssertionError(f"rac-store web exited early: {web.output()}")
        try:
            if web.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("rac-store web did not answer /healthz in time")


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``check()`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def pending_run(store: AuditStore, deadline_ms: int = 600_000, liveness: bool = False) -> str:
    """A new run with a PENDING ``logs/start_trace`` (and a liveness expectation if asked)."""
    run = uuid.uuid4()
    exps = [AuditExpectation(run, "logs", "start_trace", deadline_ms)]
    if liveness:
        exps.append(
            AuditExpectation(
                run,
                "orchestrator",
                "finalize_run",
                deadline_ms,
                metadata={"is_liveness_check": True},
            )
        )
    store.add_expectations(run, exps)
    return str(run)


def mark_missing(
    store: AuditStore, run_id: str, domain: str = "logs", action: str = "start_trace"
) -> None:
    """Mark an expectation MISSING by hand: one MISSING event in the findings stream (and,
    when it was the run's last PENDING expectation, the run's INCOMPLETE/STALE verdict)."""
    store.update_expectation_status(run_id, domain, action, "MISSING")


def ack(store: AuditStore, run_id: str, domain: str, action: str, **fields: Any) -> None:
    """One ack of ``run_id``; ``fields`` go to ``create_domain_ack`` (result_id, error, ...)."""
    store.add_ack(run_id, create_domain_ack(uuid.UUID(run_id), domain, action, **fields))
