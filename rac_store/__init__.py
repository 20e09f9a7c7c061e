"""rac_store: a Runtime Audit Contract store on Redis, with atomic Lua scripts.

Orchestrators declare what must happen in a run (expectations), workers report
what did (acks), and a reconciler finds what is missing, failed, drift or stale.
"""

from .aio import AsyncAuditReconciler, AsyncAuditStore
from .environment import StoreDurabilityMode, _determine_durability_mode
from .errors import (
    DurabilityNotConfirmedError,
    EmbeddedStoreInOtherProcessError,
    InvalidInputError,
    InvalidTransitionError,
    LayoutMismatchError,
    RACDurabilityError,
    RACStoreError,
    ReadOnlyStoreError,
    RunNotFoundError,
    StoreDataError,
    StoreNotFoundError,
    StoreOutOfMemoryError,
    StorePermissionError,
    StoreResetError,
    StoreResponseError,
    StoreTLSError,
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
    Finding,
    FindingType,
    PendingReport,
    PendingRun,
    ReconciliationResult,
    ReconciliationStatus,
    SweepReport,
    create_domain_ack,
    create_run_expectations,
)
from .reconciler import AuditReconciler, get_audit_reconciler
from .retry import RetryPolicy
from .server_checks import EvictionPolicyWarning, PersistenceWarning
from .store import AuditStore, get_audit_store, reset_audit_store
from .wait_aof import WaitAof

__version__ = "0.1.0"

__all__ = [
    "AckOutcome",
    "AckStatus",
    "AsyncAuditReconciler",
    "AsyncAuditStore",
    "AuditAction",
    "AuditDomain",
    "AuditExpectation",
    "AuditReconciler",
    "AuditStatus",
    "AuditStore",
    "DomainAck",
    "DurabilityNotConfirmedError",
    "EmbeddedStoreInOtherProcessError",
    "EvictionPolicyWarning",
    "Finding",
    "FindingType",
    "InvalidInputError",
    "InvalidTransitionError",
    "LayoutMismatchError",
    "PendingReport",
    "PendingRun",
    "PersistenceWarning",
    "RACDurabilityError",
    "RACStoreError",
    "ReadOnlyStoreError",
    "ReconciliationResult",
    "ReconciliationStatus",
    "RetryPolicy",
    "RunNotFoundError",
    "StoreDataError",
    "StoreDurabilityMode",
    "StoreNotFoundError",
    "StoreOutOfMemoryError",
    "StorePermissionError",
    "StoreResetError",
    "StoreResponseError",
    "StoreTLSError",
    "StoreUnavailableError",
    "SweepReport",
    "UnsupportedServerError",
    "WaitAof",
    "_determine_durability_mode",
    "create_domain_ack",
    "create_run_expectations",
    "get_audit_reconciler",
    "get_audit_store",
    "reset_audit_store",
]
