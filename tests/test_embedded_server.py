"""The embedded server's Lua runtime view: stock fakeredis semantics, cheaper script runs.

If a fakeredis upgrade stops reading its runtime from ``FakeServer._lua_runtime``,
``test_the_view_runs_every_script`` fails: the store still works, only slower.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import fakeredis
import pytest
import redis

from rac_store import AuditStore, create_domain_ack, create_run_expectations
from rac_store.embedded import (
    EmbeddedServer,
    create_embedded_async_client,
    create_embedded_client,
    create_embedded_server,
)


def _server(client: Any) -> EmbeddedServer:
    server = client.connection_pool.connection_kwargs["server"]
    assert isinstance(server, EmbeddedServer)
    return server


@pytest.fixture
def ours() -> Any:
    return create_embedded_client()


@pytest.fixture
def stock() -> Any:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 0)))


def _outcome(client: Any, script: str, *keys_and_args: Any, numkeys: int = 0) -> Any:
    try:
        return ("ok", client.eval(script, numkeys, *keys_and_args))
    except redis.ResponseError as exc:
        return ("error", str(exc).replace(client.script_load(script), "<sha>"))


SCRIPTS = [
    ("return {1, 'two', {3}}",),
    ("redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])", "k", "v"),
    ("return redis.status_reply('FINE')",),
    ("return redis.error_reply('RAC_BADARG stock')",),
    ("return 1 +",),  # syntax error
    ("local t = nil return t.x",),  # runtime error
    ("x = 1 redis.call('SET', 'a', '1') return 1",),  # global before a call
    ("redis.call('SET', 'b', '1') y = 2 return 1",),  # global after the last call
    ("return redis.call('NOSUCHCOMMAND')",),
    ("rawset(_G, 'z', 1) return 1",),  # a global no metatable sees
    ("setmetatable(_G, nil) w = 1 redis.call('SET', 'c', '1') return 1",),
    ("setmetatable(_G, {}) redis.call('SET', 'd', '1') return 1",),
]


@pytest.mark.parametrize("case", SCRIPTS, ids=[c[0][:30] for c in SCRIPTS])
def test_same_replies_and_errors_as_stock_fakeredis(ours: Any, stock: Any, case: Any) -> None:
    script, *rest = case
    numkeys = 1 if rest else 0
    for _ in range(2):  # the second run goes through the compiled chunk
        assert _outcome(ours, script, *rest, numkeys=numkeys) == _outcome(
            stock, script, *rest, numkeys=numkeys
        )
    assert ours.eval("return 7", 0) == 7  # nothing left over from a failed script
    for key in ("a", "b", "c", "d"):
        assert ours.get(key) == stock.get(key), key


def test_a_new_global_is_refused_and_removed(ours: Any) -> None:
    with pytest.raises(redis.ResponseError, match="global"):
        ours.eval("leak = 1 redis.call('PING') return 1", 0)
    assert ours.eval("return type(leak)", 0) == b"nil"


def test_the_view_runs_every_script(ours: Any) -> None:
    store = AuditStore(ours)
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    view = _server(ours).lua_view
    assert view is not None, "fakeredis no longer keeps its Lua runtime in _lua_runtime"
    before = view.runs
    for i in range(5):
        store.add_ack(run, create_domain_ack(run, "logs", f"a{i}"))
    assert view.runs == before + 5
    assert view.compiled_scripts == 3  # init_meta, add_expectations, add_acks


def test_script_flush_still_means_noscript(ours: Any) -> None:
    sha = ours.script_load("return 5")
    assert ours.evalsha(sha, 0) == 5
    ours.script_flush()
    with pytest.raises(redis.exceptions.NoScriptError):
        ours.evalsha(sha, 0)


def test_compiled_chunks_are_bounded(ours: Any) -> None:
    for i in range(300):
        assert ours.eval(f"return {i}", 0) == i
    view = _server(ours).lua_view
    assert view is not None
    assert view.compiled_scripts == 256
    assert ours.eval("return 0", 0) == 0  # evicted, compiled again


def test_lua_memory_stays_bounded_without_a_full_collection_per_script(ours: Any) -> None:
    store = AuditStore(ours)
    run = uuid.uuid4()
    store.add_expectations(run, create_run_expectations(run))
    big = "x" * 4000
    for i in range(2000):
        store.add_ack(run, create_domain_ack(run, "logs", f"a{i}", result_id=big))
    kilobytes = ours.eval("return math.floor(collectgarbage('count'))", 0)
    assert kilobytes < 4 * 1024, f"Lua heap grew to {kilobytes} KB (garbage is 8 MB)"


def test_async_clients_share_the_server_and_its_view() -> None:
    server = create_embedded_server()
    sync_client = create_embedded_client(server)

    async def main() -> Any:
        client = create_embedded_async_client(server)
        try:
            await client.set("from-async", "1")
            return await client.eval("return redis.call('GET', 'from-async')", 0)
        finally:
            await client.aclose()

    assert asyncio.run(main()) == b"1"
    assert sync_client.get("from-async") == b"1"
    assert server.lua_view is not None and server.lua_view.runs >= 1
