"""rac_store: a Runtime Audit Contract store on Redis, with atomic Lua scripts.

Orchestrators declare what must happen in a run (expectations), workers report
what did (acks), and a reconciler finds what is missing, failed, drift or stale.
"""

from .async_store import AsyncAuditStore
from .core import RetryPolicy
from .durability import StoreDurabilityMode, _determine_durability_mode
from .errors import (
    InvalidInputError,
    InvalidTransitionError,
    LayoutMismatchError,
    RACDurabilityError,
    RACStoreError,
    StoreOutOfMemoryError,
    StorePermissionError,
    StoreResponseError,
    StoreUnavailableError,
    UnsupportedServerError,
)
from .models import (
    AckOutcome,
    AckStatus,
    AuditAction,
    AuditDomain,
    AuditExpectation,
    AuditStatus,
    DomainAck,
    ReconciliationResult,
    ReconciliationStatus,
    create_domain_ack,
    create_run_expectations,
)
from .store import AuditStore, get_audit_store, reset_audit_store

__version__ = "0.1.0"

__all__ = [
    "AckOutcome",
    "AckStatus",
    "AsyncAuditStore",
    "AuditAction",
    "AuditDomain",
    "AuditExpectation",
    "AuditStatus",
    "AuditStore",
    "DomainAck",
    "InvalidInputError",
    "InvalidTransitionError",
    "LayoutMismatchError",
    "RACDurabilityError",
    "RACStoreError",
    "ReconciliationResult",
    "ReconciliationStatus",
    "RetryPolicy",
    "StoreDurabilityMode",
    "StoreOutOfMemoryError",
    "StorePermissionError",
    "StoreResponseError",
    "StoreUnavailableError",
    "UnsupportedServerError",
    "_determine_durability_mode",
    "create_domain_ack",
    "create_run_expectations",
    "get_audit_store",
    "reset_audit_store",
]
