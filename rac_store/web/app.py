"""The dashboard's HTTP layer: a Starlette app over a read-only :class:`AsyncAuditStore`.

Every page is built once by :mod:`rac_store.web.views` and answered as HTML
(Jinja2, autoescaped) or as JSON (``/api/...`` or ``Accept: application/json``).
Only GET and HEAD exist; the store is opened ``read_only=True``, so nothing can
write even by mistake (:func:`create_app` refuses a writable store).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..aio.reconciler import AsyncAuditReconciler
from ..aio.store import AsyncAuditStore
from ..cli.output import iso, relative
from ..errors import InvalidInputError, RACStoreError, RunNotFoundError
from ..reconciliation import Steps, run_steps_async
from . import paging, views
from .live import dumps, finding_events
from .web_metrics import WebMetrics

HERE = Path(__file__).resolve().parent
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        b" connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
"""Sent with every response: only this app's own script and stylesheet may run or load."""


@dataclass(frozen=True)
class WebOptions:
    """How the dashboard behaves.

    ``soon_ms``: how far ahead "soon due" looks; ``max_live``: most live feeds
    open at once (each holds a connection in ``XREAD BLOCK``); ``block_ms`` and
    ``keepalive_s``: the live feed's wait per read and its keep-alive period;
    ``mode``: what the footer says the store is; ``close_store``: close the
    store when the app shuts down.
    """

    soon_ms: int = views.SOON_MS
    max_live: int = 16
    block_ms: int = 1000
    keepalive_s: float = 15.0
    mode: str = "redis"
    close_store: bool = True


def templates() -> jinja2.Environment:
    """The page templates, every value autoescaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = iso
    env.filters["ago"] = relative
    env.filters["compact_json"] = lambda value: json.dumps(value, ensure_ascii=False, default=str)
    return env


def wants_json(request: Request) -> bool:
    """True for ``/api/...`` and for a client that prefers JSON to HTML."""
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    if "application/json" not in accept:
        return False
    return "text/html" not in accept or accept.index("application/json") < accept.index("text/html")


class JSONResponse(Response):
    """JSON with ``<``, ``>`` and ``&`` escaped (see :func:`rac_store.web.live.dumps`)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every response, streams included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


_STATUS_OF: list[tuple[type[Exception], int]] = [
    (RunNotFoundError, 404),
    (InvalidInputError, 400),
    (RACStoreError, 503),
]


class Dashboard:
    """The routes of one dashboard over one read-only store."""

    def __init__(self, store: AsyncAuditStore, options: WebOptions) -> None:
        if not getattr(store, "read_only", False):
            raise InvalidInputError("the dashboard needs a store opened with read_only=True")
        self.store = store
        self.options = options
        self.reconciler = AsyncAuditReconciler(store, metrics=False)
        self.env = templates()
        self.metrics = WebMetrics.create()
        self.live_open = 0

    # -- plumbing -------------------------------------------------------------------
    async def run(self, steps: Steps[Any]) -> Any:
        """Drive a view's steps with the store."""
        return await run_steps_async(steps, self.store.execute)

    def html(self, request: Request, template: str, code: int = 200, **values: Any) -> Response:
        """A page rendered from ``template``."""
        core = self.store.core
        body = self.env.get_template(template).render(
            base=request.scope.get("root_path", ""),
            prefix=core.keys.prefix,
            shards=core.keys.shards,
            mode=self.options.mode,
            **values,
        )
        return HTMLResponse(body, status_code=code)

    def error(self, request: Request, status: int, message: str) -> Response:
        """An error as JSON or as a page."""
        if wants_json(request):
            return JSONResponse({"error": message, "status": status}, status_code=status)
        return self.html(request, "error.html", status, status=status, message=message)

    def page(
        self, name: str, build: Callable[[Request], Awaitable[tuple[str, Any]]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A route: build the view, answer it as JSON or HTML, map errors, time it."""

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                template, view = await build(request)
                if wants_json(request):
                    response: Response = JSONResponse(views.as_json(view))
                else:
                    response = self.html(request, template, page=view)
            except RACStoreError as exc:
                status = next(code for kind, code in _STATUS_OF if isinstance(exc, kind))
                response = self.error(request, status, str(exc))
            seconds = time.perf_counter() - started
            response.headers["server-timing"] = f"app;dur={seconds * 1000:.2f}"
            self.metrics.observe(name, response.status_code, seconds)
            return response

        return endpoint

    # -- pages ----------------------------------------------------------------------
    async def overview(self, request: Request) -> tuple[str, Any]:
        """``/``."""
        params = request.query_params
        query = views.OverviewQuery(
            overdue=params.get("overdue"),
            soon=params.get("soon"),
            limit=paging.page_size(params.get("limit")),
            soon_ms=self.options.soon_ms,
        )
        return "overview.html", await self.run(views.overview_steps(self.store.core, query))

    async def run_page(self, request: Request) -> tuple[str, Any]:
        """``/runs/<run_id>``."""
        params = request.query_params
        query = views.RunQuery(
            expectations_page=paging.page_number(params.get("exp_page"), "exp_page"),
            acks_page=paging.page_number(params.get("acks_page"), "acks_page"),
            limit=paging.page_size(params.get("limit")),
        )
        run_id = request.path_params["run_id"]
        return "run.html", await self.run(views.run_steps(self.store.core, run_id, query))

    async def findings(self, request: Request) -> tuple[str, Any]:
        """``/findings``."""
        params = request.query_params
        query = views.FindingsQuery(
            types=paging.finding_types(params.getlist("type")),
            before=params.get("before"),
            limit=paging.page_size(params.get("limit")),
        )
        return "findings.html", await self.run(views.findings_steps(self.store.core, query))

    async def health(self, request: Request) -> Response:
        """``/healthz`` (JSON): 200 when the store answers, 503 with the error otherwise."""
        try:
            view = await self.run(views.health_steps(self.store.core, self.options.mode))
        except RACStoreError as exc:
            body = {"status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
            return JSONResponse(body, status_code=503)
        return JSONResponse(views.as_json(view))

    async def live(self, request: Request) -> Response:
        """``/findings/live``: Server-Sent Events of new findings."""
        try:
            types = paging.finding_types(request.query_params.getlist("type"))
            since = paging.parse_positions(
                request.query_params.get("since"), self.store.core.keys.shards
            )
        except InvalidInputError as exc:
            return self.error(request, 400, str(exc))
        if self.live_open >= self.options.max_live:
            return self.error(request, 503, f"at most {self.options.max_live} live feeds at once")
        events = finding_events(
            self.reconciler,
            since,
            types,
            block_ms=self.options.block_ms,
            keepalive_s=self.options.keepalive_s,
        )
        return StreamingResponse(
            self._counted(events),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def _counted(self, events: AsyncIterator[str]) -> AsyncIterator[str]:
        self.live_open += 1
        try:
            async for event in events:
                yield event
        finally:
            self.live_open -= 1
            await events.aclose()  # type: ignore[attr-defined]

    async def prometheus(self, request: Request) -> Response:
        """``/metrics``: the web's and the pending indexes' figures (needs prometheus_client)."""
        if not self.metrics.available:
            return self.error(request, 404, "metrics need: pip install 'rac-store[metrics]'")
        try:
            gauges = await self.run(views.gauges_steps(self.store.core))
        except RACStoreError as exc:
            return self.error(request, 503, str(exc))
        body, content_type = self.metrics.exposition(gauges)
        return Response(body, media_type=content_type)

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """Starlette's HTTP errors (unknown path, wrong method) as JSON or a page."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return self.error(request, status, str(detail))

    def routes(self) -> list[Route | Mount]:
        """Every route: each page and its ``/api`` twin, the live feed, health, metrics."""
        overview = self.page("overview", self.overview)
        run = self.page("run", self.run_page)
        findings = self.page("findings", self.findings)
        return [
            Route("/", overview, methods=["GET"]),
            Route("/api/overview", overview, methods=["GET"]),
            Route("/runs/{run_id}", run, methods=["GET"]),
            Route("/api/runs/{run_id}", run, methods=["GET"]),
            Route("/findings", findings, methods=["GET"]),
            Route("/api/findings", findings, methods=["GET"]),
            Route("/findings/live", self.live, methods=["GET"]),
            Route("/api/findings/live", self.live, methods=["GET"]),
            Route("/healthz", self.health, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]


def create_app(store: AsyncAuditStore, options: WebOptions | None = None) -> Starlette:
    """The dashboard over ``store``, which must be opened with ``read_only=True``.

    The store is initialised when the app starts (StoreNotFoundError for a prefix
    with no store) and closed when it stops (unless ``options.close_store`` is False).
    """
    options = options or WebOptions()
    dashboard = Dashboard(store, options)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.initialize()
        try:
            yield
        finally:
            if options.close_store:
                await store.aclose()

    app = Starlette(
        routes=dashboard.routes(),
        lifespan=lifespan,
        exception_handlers={HTTPException: dashboard.not_found},
    )
    app.add_middleware(SecurityHeaders)
    app.state.dashboard = dashboard
    return app
