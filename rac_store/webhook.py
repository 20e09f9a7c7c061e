"""Findings to a webhook: one JSON POST per event, retried, acked only after a 2xx.

:class:`Notifier` takes the events a :class:`~rac_store.consumer.FindingsConsumer`
delivers and POSTs each one (:func:`post_json`, standard library only). An
attempt that fails (a non-2xx answer, a timeout, a refused connection) is tried
again after an exponential backoff with jitter (:class:`~rac_store.retry.Backoff`); the event is
acked in its group only after a 2xx, so a crash at any point leaves it pending
and reclaimable (at-least-once: a consumer killed after a POST and before the
ack makes the next one POST it again). After ``max_tries`` failures the event
goes to its shard's dead-letter stream ``P:{s}:findings:dead`` (acked there in
the same step), is reported on stderr and counted in the metrics.

The body is the event as JSON (:func:`event_document`), or a
:class:`JsonTemplate` filled from it (e.g. Slack's ``{"text": "..."}``).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from .core import ms_to_datetime
from .findings_groups import lost_count
from .models import Finding, FindingType
from .retry import Backoff


def event_document(finding: Finding, group: str) -> dict[str, Any]:
    """The JSON of one event.

    ``type``, ``run_id``, ``stream_id``, ``shard``, ``at_ms``, ``at`` (ISO 8601), ``source``,
    ``group``; ``domain``, ``action``, ``due_ms`` when set; then the event's other fields.
    """
    document: dict[str, Any] = {
        "type": finding.type.value,
        "run_id": finding.run_id,
        "stream_id": finding.stream_id,
        "shard": finding.shard,
        "at_ms": finding.at_ms,
        "at": ms_to_datetime(finding.at_ms).isoformat(timespec="milliseconds"),
        "source": finding.source,
        "group": group,
    }
    for name in ("domain", "action", "due_ms"):
        value = getattr(finding, name)
        if value is not None:
            document[name] = value
    for name, value in finding.details.items():
        document.setdefault(name, value)
    return document


class _Blank(dict[str, Any]):
    """A format mapping whose missing names read as empty text."""

    def __missing__(self, key: str) -> str:
        return ""


class JsonTemplate:
    """A JSON document whose strings name event fields: ``"{run_id}"``, ``"run {run_id} …"``.

    A string that is exactly one ``{name}`` takes the field's value as it is (a
    number stays a number); other strings are filled as text, missing names
    empty. ``{{`` and ``}}`` are literal braces. ValueError for a template that
    is not JSON or whose placeholders are malformed.
    """

    def __init__(self, text: str) -> None:
        try:
            self._shape = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the template is not JSON: {exc}") from exc
        self.render({"type": "MISSING"})  # malformed placeholders fail here, not later

    def render(self, document: Mapping[str, Any]) -> Any:
        """The template filled from ``document``."""
        values = _Blank(document)

        def fill(node: Any) -> Any:
            if isinstance(node, str):
                name = node[1:-1]
                if node.startswith("{") and node.endswith("}") and name.isidentifier():
                    return document.get(name)
                return node.format_map(values)
            if isinstance(node, list):
                return [fill(item) for item in node]
            if isinstance(node, dict):
                return {key: fill(value) for key, value in node.items()}
            return node

        try:
            return fill(self._shape)
        except (ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"bad placeholder in the template: {exc}") from exc


@dataclass(frozen=True)
class PostResult:
    """One POST: whether it counts as delivered (2xx), its status, or what went wrong."""

    ok: bool
    status: int | None = None
    error: str = ""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib would follow a 301/302/303 to a POST with a GET
    without the body (a 200 from the login page it leads to would read as delivered) and
    would send the Authorization headers to the new location. The 3xx is a failed POST."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post_json(
    url: str, body: Any, *, timeout: float, headers: Mapping[str, str] | None = None
) -> PostResult:
    """POST ``body`` as JSON to ``url``; never raises for HTTP or network failures.

    A ``user:password@`` in the URL is sent as HTTP basic authentication. Only a 2xx
    answer counts as delivered; a redirect is not followed (it is a failed try).
    """
    data = json.dumps(body, separators=(",", ":"), default=str).encode()
    parts = urlsplit(url)
    if parts.username is not None:
        netloc = parts.netloc.rpartition("@")[2]
        url = urlunsplit(parts._replace(netloc=netloc))
    request = urllib.request.Request(url, data=data, method="POST")
    if parts.username is not None:
        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        request.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "rac-store-notify")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return PostResult(False, exc.code, f"HTTP {exc.code}: {exc.reason}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            return PostResult(False, None, f"timeout after {timeout:g}s")
        return PostResult(False, None, f"{type(reason).__name__}: {reason}")
    # urllib's HTTPErrorProcessor raises HTTPError for every answer but a 2xx (redirects
    # included: they are not followed), so an answer that gets here is a delivery.
    return PostResult(True, status)


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: no user, password, path or query (webhook URLs hold secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


class GroupConsumer(Protocol):
    """What a :class:`Notifier` needs of a consumer (a sync ``FindingsConsumer``)."""

    @property
    def group(self) -> str:
        """The group's name."""

    def ack(self, findings: list[Finding]) -> int:
        """Ack delivered events."""

    def dead_letter(self, finding: Finding, reason: str, tries: int) -> str | None:
        """Move an event to the dead-letter stream."""


class DeliveryObserver(Protocol):
    """What a :class:`Notifier` reports (the metrics of :mod:`rac_store.metrics`)."""

    def delivered(self, group: str) -> None:
        """One event POSTed with a 2xx answer and acked."""

    def attempt_failed(self, group: str) -> None:
        """One POST that failed (it may be tried again)."""

    def dead_lettered(self, group: str) -> None:
        """One event moved to the dead-letter stream."""

    def lost(self, group: str, events: int) -> None:
        """Events a GAP record says the group lost."""


@dataclass
class Outcome:
    """What happened to one event: delivered (after ``tries``) or dead-lettered (``error``)."""

    finding: Finding
    delivered: bool
    tries: int
    error: str = ""
    dead_letter_id: str | None = None


@dataclass
class Notifier:
    """POSTs events to a webhook with retries, acks after a 2xx, dead-letters after max_tries."""

    consumer: GroupConsumer
    url: str
    template: JsonTemplate | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    max_tries: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    observer: DeliveryObserver | None = None
    summary: Callable[[Finding], str] | None = None
    """A one-line text for the ``summary`` field (e.g. for a Slack template)."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set to give up between tries (the event then stays pending, reclaimable)."""
    post: Callable[..., PostResult] = post_json

    def body(self, finding: Finding) -> Any:
        """What is POSTed for ``finding``."""
        document = event_document(finding, self.consumer.group)
        if self.summary is not None:
            document["summary"] = self.summary(finding)
        return document if self.template is None else self.template.render(document)

    def deliver(self, finding: Finding) -> Outcome | None:
        """Deliver one event; None when stopped before it was delivered or dead-lettered."""
        group = self.consumer.group
        if finding.type is FindingType.GAP and self.observer is not None:
            self.observer.lost(group, lost_count(finding) or 0)
        body = self.body(finding)
        error = ""
        for tries in range(1, self.max_tries + 1):
            result = self.post(self.url, body, timeout=self.timeout, headers=self.headers)
            if result.ok:
                self.consumer.ack([finding])
                if self.observer is not None:
                    self.observer.delivered(group)
                return Outcome(finding, True, tries)
            error = result.error
            if self.observer is not None:
                self.observer.attempt_failed(group)
            if tries < self.max_tries and self.stop.wait(self.backoff.delay(tries)):
                return None
        dead = self.consumer.dead_letter(finding, error, self.max_tries)
        if self.observer is not None:
            self.observer.dead_lettered(group)
        return Outcome(finding, False, self.max_tries, error, dead)
