"""The embedded backend: an in-process fakeredis server that runs the same Lua (via lupa).

fakeredis runs a script by compiling its text on every EVAL, scanning every Lua
global from Python before each ``redis.call`` (to refuse scripts that create
globals), and running a full Lua garbage collection after it. For the store's
scripts that was ~540 µs per ``add_ack``. :class:`EmbeddedServer` keeps the
very same semantics at a fraction of the cost by handing fakeredis a thin view
of its Lua runtime (see :class:`LuaRuntimeView`): compiled chunks are reused,
the globals check runs inside Lua and only falls back to fakeredis's own check
when a new global exists, and the collector runs incrementally (Lua's default)
instead of in full after every script. Nothing in fakeredis is patched; the view
is installed through the one attribute fakeredis keeps its runtime in. Should a
fakeredis release stop using that attribute, the server simply runs at stock
speed (``tests/test_embedded_server.py`` notices).
"""

from __future__ import annotations

import importlib
from typing import Any

import fakeredis
import redis

from . import process_guard

_FULL_COLLECT = frozenset({b"collectgarbage()", "collectgarbage()"})
_HAS_NEW_GLOBAL = """
function(known)
  for name in pairs(_G) do
    if known[name] == nil then return true end
  end
  return false
end
"""
# Flags every assignment of a new global (a metatable on _G, installed only when _G
# has none); returns the function that reads and clears the flag, which also says
# "maybe" (true) for good once a script replaced that metatable.
_WATCH_NEW_GLOBALS = """
function()
  if getmetatable(_G) ~= nil then return nil end
  local assigned = false
  local watch = { __newindex = function(t, k, v) assigned = true; rawset(t, k, v) end }
  setmetatable(_G, watch)
  return function()
    local was = assigned
    assigned = false
    return was or getmetatable(_G) ~= watch
  end
end
"""


class _Names:
    """Stands in for the globals table when Lua found no new global: its keys are the known ones."""

    __slots__ = ("_names",)

    def __init__(self, names: set[Any]) -> None:
        self._names = names

    def keys(self) -> set[Any]:
        return self._names


class LuaRuntimeView:
    """A lupa ``LuaRuntime`` as fakeredis uses it, with cheaper script runs.

    Everything is forwarded to the runtime except:

    * ``execute(code)`` compiles ``code`` once and reuses the function (at most
      ``max_compiled`` texts are kept); a text that does not compile goes to the
      runtime's own ``execute``, so syntax errors read exactly as before;
    * ``execute("collectgarbage()")``, fakeredis's full collection after every
      script, is left to Lua's incremental collector;
    * ``globals()`` returns the real table only when a new global may exist,
      so fakeredis's check still finds, clears and reports it; otherwise it
      returns the known names. Inside a script (before each ``redis.call``) it
      asks a flag that a metatable on ``_G`` raises on every new global; after
      a script, and for the first check, it scans ``_G`` in Lua.
    """

    def __init__(self, runtime: Any, server: EmbeddedServer, max_compiled: int = 256) -> None:
        self._runtime = runtime
        self._server = server
        self._max_compiled = max_compiled
        self._compiled: dict[Any, Any] = {}
        self._known_source: set[Any] | None = None
        self._known_table: Any = None
        self._has_new_global = runtime.eval(_HAS_NEW_GLOBAL)
        self._watch = runtime.eval(_WATCH_NEW_GLOBALS)
        self._assigned: Any = None
        self._in_script = False
        self._syntax_error: type[Exception] = importlib.import_module(
            type(runtime).__module__
        ).LuaSyntaxError
        self.table_from = runtime.table_from
        self.eval = runtime.eval
        self.compile = runtime.compile
        self.runs = 0
        """Scripts run through a reused compiled chunk (``compiled_scripts`` counts the chunks)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    @property
    def compiled_scripts(self) -> int:
        """How many script texts are compiled and kept."""
        return len(self._compiled)

    def execute(self, code: Any, *args: Any) -> Any:
        """Run ``code`` like ``LuaRuntime.execute``, compiling each text once."""
        if code in _FULL_COLLECT:
            return None
        function = self._compiled.get(code)
        if function is None:
            try:
                function = self._runtime.compile(code)
            except self._syntax_error:
                return self._runtime.execute(code, *args)
            if len(self._compiled) >= self._max_compiled:
                del self._compiled[next(iter(self._compiled))]
            self._compiled[code] = function
        self.runs += 1
        self._in_script = True
        try:
            return function(*args)
        finally:
            self._in_script = False

    def globals(self) -> Any:
        """The globals table when a new global exists (or before start-up), else the known names."""
        known = self._server.__dict__.get("_lua_expected_globals")
        if not isinstance(known, set):
            return self._runtime.globals()
        if known is not self._known_source:
            self._known_table = self._runtime.table_from(dict.fromkeys(known, True))
            self._known_source = known
            self._assigned = self._watch()
        elif self._in_script and self._assigned is not None:
            return self._runtime.globals() if self._assigned() else _Names(known)
        if self._has_new_global(self._known_table):
            return self._runtime.globals()
        return _Names(known)


class EmbeddedServer(fakeredis.FakeServer):
    """A fakeredis server whose Lua runtime is wrapped in a :class:`LuaRuntimeView`.

    It belongs to the process that made it (``owner_pid``): in a forked child every
    command raises EmbeddedStoreInOtherProcessError (:mod:`rac_store.process_guard`).
    """

    owner_pid: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        process_guard.adopt(self)

    @property
    def usable_here(self) -> bool:
        """False when this process may not use the server (every command would raise)."""
        return not isinstance(self.lock, process_guard.RefusingLock)

    @property
    def _lua_runtime(self) -> LuaRuntimeView:
        try:
            view: LuaRuntimeView = self.__dict__["_rac_lua_view"]
        except KeyError:
            raise AttributeError("_lua_runtime") from None
        return view

    @_lua_runtime.setter
    def _lua_runtime(self, runtime: Any) -> None:
        self.__dict__["_rac_lua_view"] = LuaRuntimeView(runtime, self)

    @property
    def lua_view(self) -> LuaRuntimeView | None:
        """The runtime view, once the first script has run (None before)."""
        view: LuaRuntimeView | None = self.__dict__.get("_rac_lua_view")
        return view


def create_embedded_server() -> EmbeddedServer:
    """A new, private in-process server (Redis 7 semantics)."""
    return EmbeddedServer(version=(7, 0))


def default_server() -> EmbeddedServer:
    """The server of a store that picked the embedded default (no client, no Redis URL).

    In a worker started by ``multiprocessing`` it refuses every command: such a
    store would be private to the worker, and its acks lost to every other process.
    """
    server = create_embedded_server()
    if process_guard.in_worker_process():
        process_guard.refuse(server, process_guard.worker_message())
    return server


def create_embedded_client(server: EmbeddedServer | None = None) -> redis.Redis:
    """A client of ``server``, or of a new private in-process server."""
    client: redis.Redis = fakeredis.FakeRedis(server=server or create_embedded_server())
    return client


def create_embedded_async_client(server: EmbeddedServer | None = None) -> Any:
    """An asyncio client of ``server``, or of a new private in-process server."""
    return fakeredis.FakeAsyncRedis(server=server or create_embedded_server())


def is_embedded(client: object) -> bool:
    """True for a fakeredis client (which cannot read a ``#!lua`` first line)."""
    return type(client).__module__.startswith("fakeredis")
