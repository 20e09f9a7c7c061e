"""The part of an async store the async reconciler uses: ``core`` and ``execute``.

:class:`~rac_store.reconciler_async.AsyncAuditReconciler` needs only these two
of a store. Until ``AsyncAuditStore`` (a parallel branch) has ``execute``, the
tests drive the async reconciler through this small adapter over a real
asyncio client (``redis.asyncio`` or fakeredis's), with the package's scripts.
"""

from __future__ import annotations

from typing import Any

from rac_store.core import Call, CommandCall, StoreCore
from rac_store.embedded import is_embedded
from rac_store.scripts import SCRIPT_NAMES, load_source


class AsyncExecutor:
    """Sends sans-I/O calls on an asyncio client."""

    def __init__(self, client: Any, core: StoreCore) -> None:
        self.core = core
        self._client = client
        embedded = is_embedded(client)
        self._scripts = {
            name: client.register_script(load_source(name).text(embedded)) for name in SCRIPT_NAMES
        }

    async def execute(self, call: Call) -> Any:
        """One script call, or the commands of a CommandCall in one pipeline."""
        if isinstance(call, CommandCall):
            pipe = self._client.pipeline(transaction=False)
            for command in call.commands:
                pipe.execute_command(*command)
            return await pipe.execute()
        return await self._scripts[call.script](keys=call.keys, args=call.args)
