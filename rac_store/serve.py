"""The embedded server over the Redis protocol: one store shared by local processes.

:class:`EmbeddedRedisServer` listens on a TCP port (loopback by default) or a
unix socket and hands every command to one :class:`~rac_store.embedded.EmbeddedServer`
(the same fakeredis + lupa server, running the very same Lua scripts), so worker
processes share one store with ``AuditStore.from_url("redis://127.0.0.1:PORT")``
and no Redis installed. ``rac-store serve`` runs it.

One thread per connection: requests are parsed with hiredis, each command goes to
a fakeredis connection of that client (the server's lock serialises them, as one
Redis thread would), and replies are written in the protocol the client chose
with ``HELLO`` (RESP2 until then, RESP3 after ``HELLO 3``). ``INFO`` is answered
here (fakeredis has none) so that a store's start-up checks pass: Redis 7.0,
``noeviction``, no AOF. There is no authentication: the data lives in this
process's memory and is gone when it stops — a development and CI tool, not a
production store.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import hiredis
import redis
from redis.connection import DefaultParser

from .embedded import EmbeddedServer, create_embedded_server
from .errors import InvalidInputError
from .loopback import is_loopback


def _error_prefixes() -> dict[Any, str]:
    """The error code that redis-py turns into each exception class (what to write back)."""
    prefixes: dict[Any, str] = {}
    for code, kind in DefaultParser.EXCEPTION_CLASSES.items():
        if isinstance(kind, dict):
            for cls in kind.values():
                prefixes.setdefault(cls, "ERR")  # "ERR <text>" read as a specific class
        else:
            prefixes.setdefault(kind, code)
    return prefixes


_ERROR_PREFIX = _error_prefixes()


def encode_reply(value: Any, protocol: int) -> bytes:
    """One reply in RESP2 or RESP3 (``protocol``), from what a fakeredis connection returned."""
    for kinds, encode in _ENCODERS:
        if isinstance(value, kinds):
            return encode(value, protocol)
    raise TypeError(f"no RESP encoding for a {type(value).__name__} reply")


def _error(value: BaseException, protocol: int) -> bytes:
    text = str(value).replace("\r", " ").replace("\n", " ")
    return f"-{_ERROR_PREFIX.get(type(value), 'ERR')} {text}\r\n".encode()


def _null(value: None, protocol: int) -> bytes:
    return b"_\r\n" if protocol == 3 else b"$-1\r\n"


def _boolean(value: bool, protocol: int) -> bytes:
    if protocol == 3:
        return b"#t\r\n" if value else b"#f\r\n"
    return b":1\r\n" if value else b":0\r\n"


def _float(value: float, protocol: int) -> bytes:
    return b",%r\r\n" % value if protocol == 3 else _bulk(repr(value), protocol)


def _bulk(value: bytes | bytearray | str, protocol: int) -> bytes:
    data = value.encode() if isinstance(value, str) else bytes(value)
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _map(value: dict[Any, Any], protocol: int) -> bytes:
    items = [part for pair in value.items() for part in pair]
    head = b"%%%d\r\n" % len(value) if protocol == 3 else b"*%d\r\n" % len(items)
    return head + b"".join(encode_reply(item, protocol) for item in items)


def _set(value: set[Any] | frozenset[Any], protocol: int) -> bytes:
    head = (b"~%d\r\n" if protocol == 3 else b"*%d\r\n") % len(value)
    return head + b"".join(encode_reply(item, protocol) for item in value)


def _array(value: list[Any] | tuple[Any, ...], protocol: int) -> bytes:
    return b"*%d\r\n" % len(value) + b"".join(encode_reply(item, protocol) for item in value)


_ENCODERS: tuple[tuple[Any, Callable[[Any, int], bytes]], ...] = (
    (BaseException, _error),
    (type(None), _null),
    (bool, _boolean),  # before int, which bool subclasses
    (int, lambda value, protocol: b":%d\r\n" % value),
    (float, _float),
    (bytes | bytearray | str, _bulk),
    (dict, _map),
    (set | frozenset, _set),
    (list | tuple, _array),
)


def _sha1(text: bytes) -> bytes:
    return hashlib.sha1(text, usedforsecurity=False).hexdigest().encode()


class ScriptAliases:
    """Scripts with a ``#!lua`` first line (fakeredis cannot load it), by the SHA1 clients know.

    A real Redis reads the first line's flags; the embedded server runs the same text
    with that line commented out (as an embedded store sends it, rac_store.scripts).
    Clients name the script by the SHA1 of the text they sent, so ``EVALSHA`` and
    ``SCRIPT EXISTS`` are translated to the SHA1 of the text the server holds.
    """

    def __init__(self) -> None:
        self._served_sha: dict[bytes, bytes] = {}

    def _loadable(self, body: bytes) -> bytes:
        if not body.startswith(b"#!"):
            return body
        loadable = b"-- " + body
        self._served_sha[_sha1(body)] = _sha1(loadable)
        return loadable

    def _sha(self, sha: bytes) -> bytes:
        return self._served_sha.get(sha.lower(), sha)

    def rewrite(self, command: list[bytes]) -> list[bytes]:
        """``command`` as the embedded server must receive it."""
        name = command[0].upper()
        if len(command) < 2:
            return command
        if name in (b"EVAL", b"EVAL_RO"):
            return [command[0], self._loadable(command[1]), *command[2:]]
        if name in (b"EVALSHA", b"EVALSHA_RO"):
            return [command[0], self._sha(command[1]), *command[2:]]
        sub = command[1].upper()
        if name == b"SCRIPT" and sub == b"LOAD" and len(command) == 3:
            return [*command[:2], self._loadable(command[2])]
        if name == b"SCRIPT" and sub == b"EXISTS":
            return [*command[:2], *(self._sha(sha) for sha in command[2:])]
        return command


def info_reply(server: EmbeddedServer, port: int | None) -> bytes:
    """What ``INFO`` answers: enough for the store's start-up checks (server_checks)."""
    version = ".".join(str(part) for part in (*server.version, 0, 0)[:3])
    lines = [
        "# Server",
        f"redis_version:{version}",
        "server_name:rac-store-embedded",
        "redis_mode:standalone",
        f"process_id:{os.getpid()}",
        f"tcp_port:{port or 0}",
        "# Memory",
        "maxmemory:0",
        "maxmemory_policy:noeviction",
        "# Persistence",
        "aof_enabled:0",
    ]
    return "\r\n".join(lines).encode() + b"\r\n"


class _Session(socketserver.BaseRequestHandler):
    """One client connection: requests in, replies out, in order."""

    server: _Listener

    def handle(self) -> None:
        owner = self.server.owner
        client = fakeredis.FakeRedis(server=owner.embedded, protocol=2)
        connection: Any = client.connection_pool.get_connection()
        reader = hiredis.Reader()
        protocol = 2
        try:
            while True:
                data = self.request.recv(65536)
                if not data:
                    return
                reader.feed(data)
                out = bytearray()
                command = reader.gets()
                while command is not False:
                    reply, protocol, done = owner.answer(connection, command, protocol)
                    out += reply
                    if done:
                        self.request.sendall(out)
                        return
                    command = reader.gets()
                self.request.sendall(out)
        except hiredis.ProtocolError as exc:  # not RESP (inline commands are not served)
            self.request.sendall(_error(exc, protocol))
        except (ConnectionError, OSError):
            return  # the client went away
        finally:
            connection.disconnect()
            client.close()


class _Listener(socketserver.ThreadingMixIn, socketserver.BaseServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: EmbeddedRedisServer


class _TcpListener(_Listener, socketserver.TCPServer):
    pass


class _Tcp6Listener(_TcpListener):
    address_family = socket.AF_INET6


class _UnixListener(_Listener, socketserver.UnixStreamServer):
    pass


class EmbeddedRedisServer:
    """An :class:`EmbeddedServer` served over the Redis protocol (TCP or a unix socket).

    ``port=0`` picks a free port (see :attr:`url`). A host that is not a loopback
    address is refused (InvalidInputError) unless ``allow_remote``: there is no
    authentication. ``unix`` (a path) listens on a unix socket instead, readable
    and writable by this user only.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        unix: str | os.PathLike[str] | None = None,
        allow_remote: bool = False,
        embedded: EmbeddedServer | None = None,
    ) -> None:
        self.embedded = embedded or create_embedded_server()
        self._unix = Path(unix) if unix is not None else None
        if self._unix is None and not allow_remote and not is_loopback(host):
            raise InvalidInputError(
                f"refusing to serve on {host!r}: the embedded server has no authentication;"
                " serve on a loopback address (or: --allow-remote, allow_remote=True)"
            )
        self._listener = self._listen(host, port)
        self._listener.owner = self
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._scripts = ScriptAliases()

    def _listen(self, host: str, port: int) -> _Listener:
        if self._unix is not None:
            _clear_stale_socket(self._unix)
            with _private_umask():
                return _UnixListener(str(self._unix), _Session)
        kind = _Tcp6Listener if ":" in host else _TcpListener
        return kind((host, port), _Session)

    @property
    def url(self) -> str:
        """The URL clients connect to (``redis://host:port/0`` or ``unix://path``)."""
        if self._unix is not None:
            return f"unix://{self._unix}"
        address: Any = self._listener.server_address
        host, port = address[0], address[1]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"redis://{shown}:{port}/0"

    @property
    def port(self) -> int | None:
        """The TCP port (None on a unix socket)."""
        if self._unix is not None:
            return None
        address: Any = self._listener.server_address
        return int(address[1])

    def answer(
        self, connection: Any, command: list[bytes], protocol: int
    ) -> tuple[bytes, int, bool]:
        """The reply to one command, the protocol after it, and whether to close."""
        name = command[0].upper() if command else b""
        if name == b"INFO":
            return encode_reply(info_reply(self.embedded, self.port), protocol), protocol, False
        if name == b"QUIT":
            return b"+OK\r\n", protocol, True
        try:
            connection.send_command(*self._scripts.rewrite(command))
            reply = connection.read_response(disable_decoding=True)
        except redis.ResponseError as exc:
            reply = exc
        if name == b"SCRIPT" and len(command) == 3 and command[1].upper() == b"LOAD":
            reply = reply if isinstance(reply, Exception) else _sha1(command[2])
        if name == b"HELLO" and len(command) > 1 and not isinstance(reply, Exception):
            protocol = int(command[1])
        return encode_reply(reply, protocol), protocol, False

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` is called from another thread."""
        self._running.set()
        try:
            self._listener.serve_forever(poll_interval=0.2)
        finally:
            self._running.clear()

    def start(self) -> EmbeddedRedisServer:
        """Serve in a background thread (for the demo, tests and benchmarks)."""
        self._running.set()
        self._thread = threading.Thread(
            target=self.serve_forever, name="rac-store-serve", daemon=True
        )
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop accepting and serving; close the listening socket."""
        if self._running.is_set():
            self._listener.shutdown()
        self._listener.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._unix is not None:
            with contextlib.suppress(FileNotFoundError):
                self._unix.unlink()

    def __enter__(self) -> EmbeddedRedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket file nobody listens on; refuse anything else at ``path``."""
    if not path.exists():
        return
    if not path.is_socket():
        raise InvalidInputError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # left behind by a server that is gone
        return
    finally:
        probe.close()
    raise InvalidInputError(f"another server is listening on {path}")


@contextlib.contextmanager
def _private_umask() -> Iterator[None]:
    """A socket file created here is readable and writable by this user only."""
    previous = os.umask(0o177)
    try:
        yield
    finally:
        os.umask(previous)
