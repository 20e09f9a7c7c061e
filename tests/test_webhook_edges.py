"""Webhook delivery, against a local HTTP server in a thread and a real consumer group.

Only a 2xx answer to the POST is a delivery: a redirect is a failed try and is never
followed (urllib would follow a 302 with a GET without the body, and send the
credentials along). What a :class:`Notifier` tells its observer (the Prometheus
metrics of ``rac-store notify``), a stop between tries, and the body templates.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from rac_store import AuditReconciler, AuditStore, Finding, FindingType
from rac_store.consumer import FindingsConsumer
from rac_store.embedded import create_embedded_client
from rac_store.findings_groups import TRIMMED_UNREAD, gap_record
from rac_store.metrics import DeliveryMetrics
from rac_store.retry import Backoff
from rac_store.webhook import JsonTemplate, Notifier, event_document, post_json, redact_url

from .support.findings_events import add_event

FAST = Backoff(0.001, 0.002)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """A webhook on 127.0.0.1: answers POSTs by ``answers`` (then 200), GETs with 200."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.requests: list[Request] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int) -> None:
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/login")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _record(self, body: Any) -> None:
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.requests.append(Request(self.command, self.path, headers, body))

            def do_POST(self) -> None:
                self._record(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self._answer(receiver.answers.pop(0) if receiver.answers else 200)

            def do_GET(self) -> None:
                self._record(None)
                self._answer(200)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


@pytest.fixture
def store() -> Iterator[AuditStore]:
    made = AuditStore(create_embedded_client(), shards=1, metrics=False)
    yield made
    made.close()


def consumer_with_events(store: AuditStore, n: int, **fields: str) -> tuple[Any, list[Finding]]:
    keys, maxlen = store.core.keys, store.core.findings_maxlen
    for i in range(n):
        add_event(store.client, keys, maxlen, n=str(i), **fields)
    consumer = AuditReconciler(store, metrics=False).consumer("g", "c")
    found = consumer.read(n)
    assert len(found) == n
    return consumer, found


def dead_letters(store: AuditStore) -> list[dict[str, str]]:
    entries = store.client.xrange(store.core.keys.dead_letters(0))
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_post_and_is_never_followed(receiver: Receiver, status: int) -> None:
    receiver.answers = [status]
    port = receiver.server.server_port
    result = post_json(
        f"http://user:pw@127.0.0.1:{port}/hook", {"a": 1}, timeout=5, headers={"X-Token": "t"}
    )
    assert (result.ok, result.status) == (False, status)
    assert result.error.startswith(f"HTTP {status}: ")
    # One request: the POST. No GET of the Location (the body never went there), and the
    # credentials were sent to the webhook only.
    assert [(r.method, r.path) for r in receiver.requests] == [("POST", "/hook")]
    (request,) = receiver.requests
    assert request.body == {"a": 1} and request.headers["x-token"] == "t"
    assert request.headers["authorization"] == "Basic dXNlcjpwdw=="  # user:pw


def test_an_event_answered_by_redirects_is_dead_lettered_not_acked(
    receiver: Receiver, store: AuditStore
) -> None:
    consumer, (event,) = consumer_with_events(store, 1)
    receiver.answers = [302, 302]
    notifier = Notifier(consumer, receiver.url, max_tries=2, backoff=FAST)
    outcome = notifier.deliver(event)
    assert outcome is not None and not outcome.delivered and outcome.tries == 2
    assert outcome.error == "HTTP 302: Found"
    assert [r.method for r in receiver.requests] == ["POST", "POST"]
    (dead,) = dead_letters(store)
    assert (dead["run_id"], dead["dead_reason"], dead["dead_tries"]) == (
        event.run_id,
        "HTTP 302: Found",
        "2",
    )


def test_the_observer_hears_each_failure_delivery_dead_letter_and_loss(
    receiver: Receiver, store: AuditStore
) -> None:
    consumer, (first, second) = consumer_with_events(store, 2)
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry)
    notifier = Notifier(consumer, receiver.url, max_tries=2, backoff=FAST, observer=metrics)
    receiver.answers = [500, 204, 503, 502]  # first: delivered at try 2; second: dead
    delivered = notifier.deliver(first)
    dead = notifier.deliver(second)
    gap = gap_record(0, 7, first.at_ms, "g", TRIMMED_UNREAD)
    lost = notifier.deliver(gap)
    assert delivered is not None and (delivered.delivered, delivered.tries) == (True, 2)
    assert dead is not None and (dead.delivered, dead.error) == (False, "HTTP 502: Bad Gateway")
    assert lost is not None and lost.delivered
    value = registry.get_sample_value

    def counter(name: str) -> float | None:
        return value(name, {"group": "g"})

    assert counter("rac_notify_delivered_total") == 2  # the first event and the GAP record
    assert counter("rac_notify_attempt_failures_total") == 3
    assert counter("rac_notify_dead_letters_total") == 1
    assert counter("rac_findings_lost_total") == 7
    # Without a summary function, the body is the event document itself.
    bodies = [r.body for r in receiver.requests]
    assert bodies[1] == json.loads(json.dumps(event_document(first, "g")))
    assert bodies[-1]["type"] == "GAP" and bodies[-1]["lost"] == "7"
    assert "summary" not in bodies[1]
    # The first event was acked, the second dead-lettered: nothing left pending.
    assert consumer.backlog().total_pending == 0
    assert [d["run_id"] for d in dead_letters(store)] == [second.run_id]


def test_a_stop_between_tries_leaves_the_event_pending(
    receiver: Receiver, store: AuditStore
) -> None:
    consumer, (event,) = consumer_with_events(store, 1)
    stop = threading.Event()
    stop.set()  # as SIGTERM does in rac-store notify
    receiver.answers = [500]
    notifier = Notifier(consumer, receiver.url, max_tries=5, backoff=Backoff(30, 30), stop=stop)
    assert notifier.deliver(event) is None
    assert len(receiver.requests) == 1  # no second try
    assert consumer.backlog().total_pending == 1 and dead_letters(store) == []
    other: FindingsConsumer = AuditReconciler(store, metrics=False).consumer("g", "other")
    assert [f.stream_id for f in other.claim(0)] == [event.stream_id]


def test_a_template_keeps_lists_numbers_and_literals() -> None:
    template = JsonTemplate(
        '{"blocks": [{"text": "run {run_id}"}, "{shard}", 3, true, null], "n": 1.5}'
    )
    assert template.render({"run_id": "r1", "shard": 4}) == {
        "blocks": [{"text": "run r1"}, 4, 3, True, None],
        "n": 1.5,
    }


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "{run_id"}',  # unclosed brace: ValueError
        '{"a": "{0}"}',  # positional field: ValueError
        '{"a": "{run_id[0]}"}',  # index into a missing (empty) value: IndexError
        '{"a": ["{run_id.real}"]}',  # attribute of a missing (empty) value: AttributeError
    ],
)
def test_a_malformed_placeholder_is_refused_when_the_template_is_made(text: str) -> None:
    with pytest.raises(ValueError, match=r"^bad placeholder in the template: "):
        JsonTemplate(text)


def test_the_event_document_has_the_optional_fields_and_keeps_its_own() -> None:
    finding = Finding(
        type=FindingType.MISSING,
        run_id="r1",
        at_ms=1_700_000_000_123,
        source="sweep",
        domain="billing",
        action="charge",
        due_ms=1_700_000_000_000,
        details={"type": "forged", "extra": "1"},
        shard=3,
        stream_id="1-0",
    )
    document = event_document(finding, "pager")
    assert document == {
        "type": "MISSING",
        "run_id": "r1",
        "stream_id": "1-0",
        "shard": 3,
        "at_ms": 1_700_000_000_123,
        "at": "2023-11-14T22:13:20.123+00:00",
        "source": "sweep",
        "group": "pager",
        "domain": "billing",
        "action": "charge",
        "due_ms": 1_700_000_000_000,
        "extra": "1",
    }


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:s3cret@hooks.example:8443/T0/B1?token=s3cret",
            "https://hooks.example:8443/…",
        ),
        ("http://hooks.example/services/s3cret", "http://hooks.example/…"),
        ("http:///s3cret", "http://?/…"),
    ],
)
def test_a_redacted_url_shows_only_scheme_host_and_port(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("status", "ok"),
    [
        (200, True),
        (204, True),
        (299, True),
        (101, False),
        (199, False),
        (304, False),
        (404, False),
        (599, False),
    ],
)
def test_only_a_2xx_answer_is_a_delivery(receiver: Receiver, status: int, ok: bool) -> None:
    receiver.answers = [status]
    result = post_json(receiver.url, {"a": 1}, timeout=5)
    assert (result.ok, result.status) == (ok, status)
    assert result.error == "" if ok else result.error.startswith(f"HTTP {status}: ")
    assert len(receiver.requests) == 1
