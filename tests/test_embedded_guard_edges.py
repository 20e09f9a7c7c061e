"""Edges of the embedded server: fakeredis's Lua modules still load through the runtime
view, a refused server's lock refuses every way it can be taken, and ``--metrics-port``
without prometheus_client says how to install it (a sweeper on a served embedded store)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import fakeredis
import pytest

from rac_store import AuditStore, EmbeddedStoreInOtherProcessError
from rac_store.cli import main
from rac_store.embedded import create_embedded_client, create_embedded_server
from rac_store.process_guard import refuse
from rac_store.serve import EmbeddedRedisServer

from .support.redis_server import free_port


def test_a_lua_module_is_required_through_the_runtime_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "racmod.lua").write_text("return { answer = function(x) return x * 2 end }\n")
    monkeypatch.setenv("LUA_PATH", f"{tmp_path}/?.lua;;")  # read when the runtime starts
    server = create_embedded_server()
    client = fakeredis.FakeRedis(server=server, lua_modules={"racmod"})
    assert client.eval("return racmod.answer(tonumber(ARGV[1]))", 0, "21") == 42
    view = server.lua_view
    assert view is not None and view.runs == 1  # run through the view's compiled chunks


def test_a_refused_servers_lock_refuses_every_way_it_is_taken() -> None:
    server = create_embedded_server()
    client = create_embedded_client(server)
    client.set("k", "v")
    refuse(server, "not this process's server")
    assert not server.usable_here
    lock = server.lock
    assert not lock.locked()
    with pytest.raises(EmbeddedStoreInOtherProcessError, match="not this process's server"):
        lock.acquire()
    with pytest.raises(EmbeddedStoreInOtherProcessError, match="not this process's server"):
        lock.acquire(blocking=False)
    with pytest.raises(EmbeddedStoreInOtherProcessError):  # a Condition over it, too
        threading.Condition(lock).notify_all()
    with pytest.raises(EmbeddedStoreInOtherProcessError):
        client.get("k")


def test_metrics_port_without_prometheus_client_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError
    with EmbeddedRedisServer() as served:  # the store the sweeper would have swept
        AuditStore.from_url(served.url).close()  # made
        port = str(free_port())
        code = main(["sweep", "--every", "1", "--metrics-port", port, "--redis-url", served.url])
    err = capsys.readouterr().err
    assert code == 2
    assert "--metrics-port needs prometheus-client: pip install 'rac-store[metrics]'" in err
