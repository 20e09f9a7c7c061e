"""``rac-store acl``: the printed ACL SETUSER lines run as they are on a real server, and a
user name that would break a line (a space, a control character) is a usage error."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from rac_store.cli import main

from .support.redis_server import RedisServer

USERS = {"worker": "t-worker", "inspector": "t-inspector", "alerting": "t-alerting"}


@pytest.fixture
def cleanup_users(redis_client: Any) -> Iterator[None]:
    yield
    redis_client.acl_deluser(*USERS.values())


@pytest.mark.redis_only
def test_the_printed_lines_make_working_users(
    redis_client: Any,
    redis_server: RedisServer,
    cleanup_users: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["acl", "--prefix", "p"] + [f"--{role}={name}" for role, name in USERS.items()]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == list(USERS.values())  # plain text, one a line
    for line in lines:
        redis_client.execute_command(*shlex.split(line.replace("<password>", "pw")))
    worker = redis_server.client(username=USERS["worker"], password="pw")
    alerting = redis_server.client(username=USERS["alerting"], password="pw")
    try:
        worker.hset("p:{0}:run", "k", "v")  # a store key of prefix p
        with pytest.raises(redis.exceptions.NoPermissionError):
            worker.hset("q:{0}:run", "k", "v")  # another prefix's key
        with pytest.raises(redis.exceptions.NoPermissionError):
            alerting.hgetall("p:{0}:run")  # no run data for the alerting user
    finally:
        worker.close()
        alerting.close()


@pytest.mark.parametrize("role", ["worker", "inspector", "alerting"])
@pytest.mark.parametrize("name", ["two words", "tab\tname", "bell\a", ""])
def test_a_user_name_that_would_break_the_line_is_a_usage_error(
    role: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["acl", f"--{role}={name}"])
    assert stopped.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "a user name is one word without spaces" in err
