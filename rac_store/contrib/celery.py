"""Celery tasks acked by their outcome: ``install(app, store)`` and ``audit_headers(...)``.

The orchestrator sends a task with the expectation it answers::

    task.apply_async(args, headers=audit_headers(run_id, "incidents", "create_incident"))

and every worker of ``app`` that called ``install(app, store)`` acks the task's
**final** outcome, once:

* ``task_success`` → a success ack (``result_id``: the task id);
* ``task_failure`` (retries exhausted, or no retry) → a failure ack
  ``error="<ExceptionType>: <message>"``;
* ``task_revoked`` (revoked, terminated or expired before it ran) → a failure ack
  ``error="TaskRevokedError: revoked|terminated|expired"``: the action did not happen;
* ``task_retry`` → nothing: a retry is not an outcome (the retried run acks its own).

Every ack of one task has the same id, derived from the Celery task id
(:func:`ack_id`), so a task that runs twice (a redelivered message, a re-sent
task id) cannot ack twice: the store records the first outcome and answers the
others DUPLICATE. Tasks sent without the headers are left alone.

An ack that cannot be sent raises in the signal handler; Celery logs it (a signal
handler cannot fail the task), and the expectation's deadline then reports the
action MISSING. Install: ``pip install 'rac-store[celery]'``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..audited import describe_error
from ..errors import InvalidInputError
from ..models import DomainAck, create_domain_ack
from ..validation import action_key, canonical_run_id

HEADER = "rac_audit"
"""The message header that carries the expectation a task answers."""
ACK_NAMESPACE = uuid.UUID("5b0f3c1e-6f7a-4c53-9a56-2a0c2d0b7e11")
"""Namespace of the deterministic ack ids (uuid5 of the Celery task id)."""

_log = logging.getLogger("rac_store.celery")


class AckSender(Protocol):
    """What the handlers need of a store (a sync :class:`~rac_store.store.AuditStore`)."""

    def add_ack(self, run_id: uuid.UUID | str, ack: DomainAck) -> Any:
        """Record one ack."""


def audit_headers(run_id: uuid.UUID | str, domain: str, action: str) -> dict[str, Any]:
    """The ``headers=`` of ``apply_async`` for a task that performs ``action`` of ``domain``.

    InvalidInputError for a malformed run id, domain or action (before anything is sent).
    """
    domain_text, action_text = action_key(domain, action).split("|")
    return {
        HEADER: {"run_id": canonical_run_id(run_id), "domain": domain_text, "action": action_text}
    }


def ack_id(task_id: str) -> uuid.UUID:
    """The id of every ack of the Celery task ``task_id`` (the same for each of its runs)."""
    return uuid.uuid5(ACK_NAMESPACE, f"celery-task:{task_id}")


@dataclass(frozen=True)
class Target:
    """The expectation a task answers, read back from its headers."""

    run_id: str
    domain: str
    action: str

    @classmethod
    def of(cls, request: Any) -> Target | None:
        """The target of a task request; None for a task sent without the headers.

        InvalidInputError when the header is there but malformed.
        """
        raw = getattr(request, HEADER, None)
        if raw is None:
            raw = (getattr(request, "headers", None) or {}).get(HEADER)
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise InvalidInputError(f"the {HEADER} header must be a mapping, got {raw!r:.80}")
        target = cls(str(raw.get("run_id")), str(raw.get("domain")), str(raw.get("action")))
        canonical_run_id(target.run_id)
        action_key(target.domain, target.action)
        return target


def outcome_ack(
    target: Target, task_id: str, task_name: str, retries: int, error: str | None
) -> DomainAck:
    """The ack of a task's final outcome (``error`` None: success), with its deterministic id."""
    ack = create_domain_ack(
        uuid.UUID(target.run_id),
        target.domain,
        target.action,
        result_id=None if error else task_id,
        error=error,
        metadata={"celery_task": task_name, "celery_task_id": task_id, "retries": retries},
    )
    ack.id = ack_id(task_id)
    return ack


@dataclass
class CeleryAudit:
    """The handlers :func:`install` connected; :meth:`uninstall` disconnects them."""

    app: Any
    store: AckSender
    _connected: list[tuple[Any, Callable[..., None]]] = field(default_factory=list)

    def _mine(self, task: Any) -> bool:
        return getattr(task, "app", None) is self.app

    def _send(self, task: Any, request: Any, error: str | None) -> None:
        target = Target.of(request)
        if target is None or not self._mine(task):
            return
        task_id = str(getattr(request, "id", ""))
        retries = int(getattr(request, "retries", 0) or 0)
        ack = outcome_ack(target, task_id, getattr(task, "name", "?"), retries, error)
        self.store.add_ack(target.run_id, ack)

    def on_success(self, sender: Any = None, **_: Any) -> None:
        """``task_success``: the task returned."""
        self._send(sender, sender.request, None)

    def on_failure(self, sender: Any = None, exception: Any = None, **_: Any) -> None:
        """``task_failure``: the task raised, and will not be retried."""
        error = describe_error(exception) if isinstance(exception, BaseException) else "failed"
        self._send(sender, sender.request, error)

    def on_retry(
        self, sender: Any = None, request: Any = None, reason: Any = None, **_: Any
    ) -> None:
        """``task_retry``: not an outcome, nothing is acked (the retried run acks its own)."""
        target = Target.of(request)
        if target is not None and self._mine(sender):
            _log.debug("task %s retried for %s: no ack until its outcome", request.id, target)

    def on_revoked(
        self,
        sender: Any = None,
        request: Any = None,
        terminated: bool = False,
        expired: bool = False,
        **_: Any,
    ) -> None:
        """``task_revoked``: revoked, terminated or expired: the action did not happen."""
        why = "expired" if expired else "terminated" if terminated else "revoked"
        self._send(sender, request, f"TaskRevokedError: {why}")

    def uninstall(self) -> None:
        """Disconnect the handlers."""
        for signal, handler in self._connected:
            signal.disconnect(handler)
        self._connected.clear()


def install(app: Any, store: AckSender) -> CeleryAudit:
    """Ack the outcome of every task of ``app`` sent with :func:`audit_headers`.

    Call it where the worker imports the app (the app's module, or a
    ``worker_process_init`` handler for a store made per process).
    """
    from celery import signals  # noqa: PLC0415  (the optional extra)

    audit = CeleryAudit(app, store)
    for signal, handler in (
        (signals.task_success, audit.on_success),
        (signals.task_failure, audit.on_failure),
        (signals.task_retry, audit.on_retry),
        (signals.task_revoked, audit.on_revoked),
    ):
        signal.connect(handler, weak=False)
        audit._connected.append((signal, handler))
    return audit
