"""asyncio: the async store, its auto-pipeline and sender, and the async reconciler."""

from .reconciler import AsyncAuditReconciler
from .store import AsyncAuditStore

__all__ = ["AsyncAuditReconciler", "AsyncAuditStore"]
