"""``rac-store serve``'s protocol edges: QUIT, scripts named by the text a client sent,
doubles, a connection reset mid-transaction, every reply kind's encoding, and the
command line's refusals (a port that is not a number, a port already taken)."""

from __future__ import annotations

import hashlib
import signal
import socket
import struct
import subprocess
import threading
from pathlib import Path
from typing import Any

import hiredis
import pytest
import redis

from rac_store import InvalidInputError
from rac_store.serve import EmbeddedRedisServer, encode_reply

from .support.cli import RAC_STORE, rac_store


def _command(*parts: str) -> bytes:
    """One request in RESP (an array of bulk strings), as a client library sends it."""
    out = b"*%d\r\n" % len(parts)
    for part in parts:
        data = part.encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


def _read_until_closed(conn: socket.socket) -> list[Any]:
    """The replies the server sends until it closes the connection, as a client reads them."""
    reader = hiredis.Reader()
    while chunk := conn.recv(65536):
        reader.feed(chunk)
    replies = []
    while (reply := reader.gets()) is not False:
        replies.append(reply)
    return replies


def _read_replies(conn: socket.socket, count: int) -> list[Any]:
    """The next ``count`` replies, as a client reads them."""
    reader = hiredis.Reader()
    replies: list[Any] = []
    while len(replies) < count:
        chunk = conn.recv(65536)
        assert chunk, f"closed after {replies!r}"
        reader.feed(chunk)
        while len(replies) < count and (reply := reader.gets()) is not False:
            replies.append(reply)
    return replies


def _sessions() -> set[threading.Thread]:
    """The connection threads alive now (socketserver names them after the method)."""
    return {t for t in threading.enumerate() if t.name.endswith("(process_request_thread)")}


def test_quit_answers_ok_closes_and_runs_nothing_sent_after_it() -> None:
    with EmbeddedRedisServer() as server:
        assert server.port is not None
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.sendall(
                _command("SET", "before", "1") + _command("QUIT") + _command("SET", "after", "1")
            )
            assert _read_until_closed(conn) == [b"OK", b"OK"]  # SET, QUIT; then closed
        client = redis.Redis.from_url(server.url)
        assert client.get("before") == b"1"
        assert client.get("after") is None  # pipelined behind QUIT: never run
        client.close()


def test_scripts_are_named_by_the_sha1_of_the_text_the_client_sent() -> None:
    """A ``#!lua`` first line is commented out for fakeredis, but SCRIPT LOAD answers, and
    EVALSHA and SCRIPT EXISTS take, the SHA1 of the text as sent (as a real Redis does)."""
    flagged = "#!lua flags=no-writes\nreturn ARGV[1]"
    plain = "return 7"
    with EmbeddedRedisServer() as server:
        client = redis.Redis.from_url(server.url, protocol=2)
        sha = client.script_load(flagged)
        assert sha == hashlib.sha1(flagged.encode()).hexdigest()
        assert client.evalsha(sha, 0, "echoed") == b"echoed"
        assert client.script_exists(sha, "0" * 40) == [True, False]
        assert client.eval(plain, 0) == 7  # no flags line: run as sent
        plain_sha = hashlib.sha1(plain.encode()).hexdigest()
        assert client.script_exists(plain_sha) == [True]
        assert client.evalsha(plain_sha, 0) == 7
        client.script_flush()
        assert client.script_exists(sha, plain_sha) == [False, False]
        with pytest.raises(redis.exceptions.NoScriptError):
            client.evalsha(sha, 0, "again")
        client.close()


def test_a_double_is_a_bulk_string_in_resp2_and_a_double_in_resp3() -> None:
    """As Redis 7: a Lua ``{double=...}`` and a sorted-set score."""
    with EmbeddedRedisServer() as server:
        assert server.port is not None
        resp2 = redis.Redis.from_url(server.url, protocol=2)
        resp3 = redis.Redis.from_url(server.url, protocol=3)
        try:
            assert resp2.eval("return {double=1.5}", 0) == b"1.5"
            assert resp3.eval("return {double=1.5}", 0) == 1.5
            resp2.zadd("z", {"m": 2.25})
            assert resp3.zscore("z", "m") == 2.25
        finally:
            resp2.close()
            resp3.close()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.sendall(_command("ZSCORE", "z", "m") + _command("HELLO", "3"))
            conn.sendall(_command("ZSCORE", "z", "m") + _command("QUIT"))
            replies = _read_until_closed(conn)
        assert replies[0] == b"2.25" and replies[2] == 2.25  # a bulk string, then a double


def test_a_connection_reset_mid_transaction_writes_nothing_and_ends_its_session() -> None:
    with EmbeddedRedisServer() as server:
        assert server.port is not None
        before = _sessions()
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        conn.sendall(_command("MULTI") + _command("SET", "k", "queued"))
        assert _read_replies(conn, 2) == [b"OK", b"QUEUED"]
        (session,) = _sessions() - before
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # an RST, not a FIN: the server's next read fails
        session.join(10)
        assert not session.is_alive()
        client = redis.Redis.from_url(server.url)
        assert client.get("k") is None  # the transaction was never executed
        assert client.set("k", "later") and client.get("k") == b"later"
        client.close()


@pytest.mark.parametrize(
    ("value", "resp2", "resp3", "read_back"),
    [
        (True, b":1\r\n", b"#t\r\n", True),
        (False, b":0\r\n", b"#f\r\n", False),
        (None, b"$-1\r\n", b"_\r\n", None),
        (0.5, b"$3\r\n0.5\r\n", b",0.5\r\n", 0.5),
        ({b"a"}, b"*1\r\n$1\r\na\r\n", b"~1\r\n$1\r\na\r\n", [b"a"]),
        (frozenset(), b"*0\r\n", b"~0\r\n", []),
        ({b"k": 1}, b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n", {b"k": 1}),
        ("é", b"$2\r\n\xc3\xa9\r\n", b"$2\r\n\xc3\xa9\r\n", "é".encode()),
        ((1, bytearray(b"x")), b"*2\r\n:1\r\n$1\r\nx\r\n", b"*2\r\n:1\r\n$1\r\nx\r\n", [1, b"x"]),
    ],
)
def test_every_reply_kind_is_encoded_as_redis_would_send_it(
    value: Any, resp2: bytes, resp3: bytes, read_back: Any
) -> None:
    assert encode_reply(value, 2) == resp2
    assert encode_reply(value, 3) == resp3
    reader = hiredis.Reader()
    reader.feed(resp3)
    assert reader.gets() == read_back  # what a RESP3 client reads


def test_a_reply_with_no_resp_encoding_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="no RESP encoding for a PosixPath reply"):
        encode_reply(Path("/"), 2)


def test_a_path_that_is_not_a_socket_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("keep me")
    with pytest.raises(InvalidInputError, match="exists and is not a socket"):
        EmbeddedRedisServer(unix=path)
    assert path.read_text() == "keep me"


def test_serve_prints_its_url_and_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [RAC_STORE, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("serving the embedded store at redis://127.0.0.1:"), first
        client = redis.Redis.from_url(first.split(" at ", 1)[1].strip())
        assert client.ping() and client.set("k", "v") and client.get("k") == b"v"
        client.close()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "no authentication" in err and "serve: stopped" in err


def test_a_port_that_is_not_a_number_is_a_usage_error() -> None:
    done = rac_store("serve", "--port", "sixty")
    assert done.returncode == 2 and done.stdout == ""
    assert "not a port number: 'sixty'" in done.stderr


def test_a_port_in_use_is_a_usage_error_that_names_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = rac_store("serve", "--port", str(port))
    assert done.returncode == 2 and done.stdout == ""
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr
