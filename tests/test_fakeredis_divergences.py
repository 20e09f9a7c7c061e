"""Known differences between fakeredis + lupa and a real Redis, pinned.

If a fakeredis upgrade changes one of these, this file fails and the workaround
in rac_store (named in each test) can be revisited.
"""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
import redis

from .support.redis_server import RedisServer


@pytest.fixture
def fake() -> Any:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 0)))


def test_shebang_line_not_understood(fake: Any, redis_client: redis.Redis) -> None:
    """Workaround: scripts.py blanks the ``#!lua`` line for the embedded backend."""
    text = "#!lua flags=no-writes\nreturn 1"
    assert redis_client.eval(text, 0) == 1
    with pytest.raises(redis.ResponseError):
        fake.eval(text, 0)


def test_error_table_raised_in_a_helper_loses_its_text(
    fake: Any, redis_client: redis.Redis
) -> None:
    """Workaround: Lua helpers return error texts; the main chunk returns redis.error_reply."""
    text = "local function f() error({err='RAC_BADARG inner'}) end\nf()\nreturn 1"
    with pytest.raises(redis.ResponseError, match="RAC_BADARG inner"):
        redis_client.eval(text, 0)
    with pytest.raises(redis.ResponseError) as caught:
        fake.eval(text, 0)
    assert "RAC_BADARG" not in str(caught.value)


def test_error_reply_is_the_same(fake: Any, redis_client: redis.Redis) -> None:
    text = "return redis.error_reply('RAC_BADARG same')"
    for client in (fake, redis_client):
        with pytest.raises(redis.ResponseError, match=r"^RAC_BADARG same$"):
            client.eval(text, 0)


def test_same_lua_version(fake: Any, redis_client: redis.Redis) -> None:
    """fakeredis runs lupa's Lua 5.1, as Redis does (not a divergence today: pinned)."""
    assert redis_client.eval("return _VERSION", 0) == b"Lua 5.1"
    assert fake.eval("return _VERSION", 0) == b"Lua 5.1"


def test_no_info_command(fake: Any, redis_server: RedisServer) -> None:
    """Server checks that need INFO cannot run on the embedded backend."""
    with pytest.raises(redis.ResponseError):
        fake.info("server")
    with redis_server.client() as client:
        assert client.info("server")["redis_version"]


def test_xreadgroup_inside_a_script_replies_flat(fake: Any, redis_client: redis.Redis) -> None:
    """Workaround: read_group.lua accepts both ``{{key, entries}}`` and ``{key, entries}``."""
    text = (
        "redis.call('XADD', KEYS[1], '1-1', 'f', 'v')\n"
        "redis.call('XGROUP', 'CREATE', KEYS[1], 'g', '0')\n"
        "local r = redis.call('XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', KEYS[1], '>')\n"
        "return type(r[1])"
    )
    assert redis_client.eval(text, 1, "s") == b"table"
    assert fake.eval(text, 1, "s") == b"string"
