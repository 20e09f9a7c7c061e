"""Running the dashboard: its store (read-only, or embedded with the demo data) and uvicorn."""

from __future__ import annotations

import uuid

import uvicorn

from ..aio.store import AsyncAuditStore
from ..cli.common import stop_on_signals
from ..cli.demo import orchestrate
from ..cluster.urls import redacted
from ..embedded import (
    EmbeddedServer,
    create_embedded_async_client,
    create_embedded_client,
    create_embedded_server,
)
from ..models import AuditExpectation, create_domain_ack, create_run_expectations
from ..reconciler import AuditReconciler
from ..store import AuditStore
from .app import WebOptions, create_app

SOON_RUNS = 5
"""Runs of the demo data still in progress, due within minutes."""
OVERDUE_RUNS = 2
"""Runs of the demo data past due that no sweep has marked yet."""


def fill_demo(store: AuditStore) -> list[str]:
    """The demo's data in ``store``: ``rac-store demo``'s runs, swept and reconciled (their
    verdicts recorded), plus runs in progress and runs past due; their ids."""
    reconciler = AuditReconciler(store, metrics=False)
    run_ids, _ = orchestrate(reconciler, runs=3, workers=4)
    for run_id in run_ids:
        reconciler.reconcile(run_id)  # records the INCOMPLETE and STALE verdicts
    for i in range(SOON_RUNS):
        run = uuid.uuid4()
        store.add_expectations(run, create_run_expectations(run, 60_000 * (i + 2), 60_000))
        store.add_ack(run, create_domain_ack(run, "incidents", "create_incident", f"INC-{i + 100}"))
        if i == 0:
            ack = create_domain_ack(
                run,
                "policies",
                "evaluate_policy",
                rolled_back=True,
                rollback_reason="policy withdrawn by the operator",
            )
            store.add_ack(run, ack)
        run_ids.append(str(run))
    for _ in range(OVERDUE_RUNS):
        run = uuid.uuid4()
        store.add_expectations(run, [AuditExpectation(run, "logs", "start_trace", 0)])
        run_ids.append(str(run))
    return run_ids


def demo_server() -> EmbeddedServer:
    """A new embedded server holding :func:`fill_demo`'s data."""
    server = create_embedded_server()
    writer = AuditStore(create_embedded_client(server), metrics=False)
    fill_demo(writer)
    return server


def open_store(url: str | None, prefix: str) -> tuple[AsyncAuditStore, str]:
    """A read-only async store at ``url`` (checked now), or on a new embedded server with
    the demo's data when ``url`` is None; and a description of it."""
    if url is None:
        print("rac-store web: filling an embedded store with the demo's data ...", flush=True)
        client = create_embedded_async_client(demo_server())
        return AsyncAuditStore(client, read_only=True, metrics=False), "embedded demo"
    AuditStore.from_url(url, prefix=prefix, read_only=True, metrics=False).close()  # fail fast
    store = AsyncAuditStore.from_url(url, prefix=prefix, read_only=True, metrics=False)
    return store, redacted(url)


def serve(url: str | None, prefix: str, host: str, port: int) -> int:
    """Serve the dashboard until SIGINT or SIGTERM; 0 on a clean stop."""
    store, where = open_store(url, prefix)
    mode = "embedded" if url is None else "redis"
    app = create_app(store, WebOptions(mode=mode))
    shown = f"[{host}]" if ":" in host else host
    print(
        f"rac-store web: http://{shown}:{port}/ (read-only, store {prefix!r} on {where})",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=3,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    # uvicorn shuts down on SIGTERM/SIGINT, restores the handlers it found and raises the
    # signal again: ours take it, so a clean stop exits 0 as documented, not by the signal.
    with stop_on_signals():
        server.run()
    return 0 if server.started else 2
