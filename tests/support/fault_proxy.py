"""A TCP proxy in front of a redis-server that loses the reply of a chosen command.

Clients (sync, asyncio, auto-pipelined: anything that speaks RESP2) connect to
the proxy instead of the server. The proxy forwards every command and every
reply, reading both streams command by command. Once :meth:`FaultProxy.lose_reply`
is armed, the first reply to a matching command that *ran* (any reply but
NOSCRIPT) is not forwarded: the proxy calls ``snapshot()`` (the server has
executed the command; the client is still waiting), then closes the client's
connection — the reply and anything pipelined behind it are lost, exactly as
when a network fails after the server answered. The client re-sends on a new
connection; when the same command runs again, ``snapshot()`` is called once
more before its reply is forwarded, so a test compares the state after the
first execution with the state after the re-send, with nothing in between.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hiredis

from .redis_server import free_port

Command = list[bytes]
Match = Callable[[Command], bool]


def reply_end(buf: bytes | bytearray, pos: int) -> int | None:
    """The end of the RESP2/RESP3 value that starts at ``pos``, or None if incomplete."""
    line_end = buf.find(b"\r\n", pos)
    if line_end < 0:
        return None
    kind = buf[pos : pos + 1]
    after = line_end + 2
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return after
    if kind in (b"$", b"=", b"!"):
        size = int(buf[pos + 1 : line_end])
        if size < 0:
            return after
        end = after + size + 2
        return end if len(buf) >= end else None
    if kind in (b"*", b"~", b">", b"%", b"|"):
        count = int(buf[pos + 1 : line_end])
        if kind in (b"%", b"|"):
            count *= 2
        position: int | None = after
        for _ in range(max(count, 0)):
            assert position is not None
            position = reply_end(buf, position)
            if position is None:
                return None
        return position
    raise ValueError(f"not RESP at {pos}: {bytes(buf[pos : pos + 20])!r}")


def parse_command(raw: bytes) -> Command:
    """The arguments of one RESP command (an array of bulk strings)."""
    reader = hiredis.Reader()
    reader.feed(raw)
    parsed = reader.gets()
    return [bytes(part) for part in parsed]


def script_sha(command: Command) -> str | None:
    """The SHA1 of the script an EVALSHA/EVAL command runs (None for other commands)."""
    name = command[0].upper()
    if name == b"EVALSHA":
        return command[1].decode()
    if name == b"EVAL":
        return hashlib.sha1(command[1], usedforsecurity=False).hexdigest()
    return None


def runs_script(sha: str) -> Match:
    """A match for the EVALSHA or EVAL commands that run the script with ``sha``."""
    return lambda command: script_sha(command) == sha


@dataclass
class Arming:
    """One armed fault: which command, what to call, and what was seen."""

    match: Match
    snapshot: Callable[[], Any]
    states: list[Any] = field(default_factory=list)
    """snapshot() after the first execution (reply lost), then after the re-send."""
    replies: list[Any] = field(default_factory=list)
    """The parsed reply of each execution, in order."""
    executions: int = 0
    """How many times a matching command ran while armed (NOSCRIPT replies not counted)."""


class FaultProxy:
    """A loopback TCP proxy to ``upstream_port`` (see the module docstring)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = free_port()
        self.connections = 0
        """Connections clients opened."""
        self._talking: set[int] = set()
        self.cuts = 0
        self._arming: Arming | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The redis:// URL clients use to go through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    def lose_reply(self, match: Match, snapshot: Callable[[], Any]) -> Arming:
        """Lose the reply of the next matching command that runs; watch its re-send."""
        arming = Arming(match, snapshot)
        with self._lock:
            self._arming = arming
        return arming

    def count_senders(self) -> None:
        """Start counting the connections that send a command (see :meth:`senders`)."""
        with self._lock:
            self._talking = set()

    def senders(self) -> int:
        """Connections that sent at least one command since :meth:`count_senders`.

        Against a server that never answers, this is the number of sends of a call:
        redis-py drops a connection whose command timed out and opens a new one
        for the next send (whose first command, on a new connection, is its
        handshake).
        """
        with self._lock:
            return len(self._talking)

    def disarm(self) -> None:
        """Forward everything again."""
        with self._lock:
            self._arming = None

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    # -- plumbing -------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._serve(client)

    def _serve(self, client: socket.socket) -> None:
        """Pump one client's connection both ways, through a connection of its own upstream."""
        upstream = socket.create_connection(self.upstream)
        with self._lock:
            self.connections += 1
            self._sockets += [client, upstream]
        pending: deque[Command] = deque()

        def request(raw: bytes) -> bool:
            pending.append(parse_command(raw))  # noted before it is forwarded
            with self._lock:
                self._talking.add(id(client))
            return True

        def reply(raw: bytes) -> bool:
            return self._watch(pending.popleft(), raw) != "cut"

        for source, sink, handle in ((client, upstream, request), (upstream, client, reply)):
            threading.Thread(target=_pump, args=(source, sink, handle), daemon=True).start()

    def _watch(self, command: Command, reply: bytes) -> str:
        """'cut' for the reply to lose; snapshots around the armed command's executions."""
        with self._lock:
            arming = self._arming
        if arming is None or reply.startswith(b"-NOSCRIPT") or not arming.match(command):
            return "forward"
        reader = hiredis.Reader()
        reader.feed(reply)
        arming.replies.append(reader.gets())
        arming.executions += 1
        arming.states.append(arming.snapshot())
        if arming.executions == 1:
            self.cuts += 1
            return "cut"
        return "forward"


def _pump(source: socket.socket, sink: socket.socket, handle: Callable[[bytes], bool]) -> None:
    """Forward whole RESP values from ``source`` to ``sink``, each seen by ``handle`` first;
    when it returns False that value is not forwarded and both connections are closed."""
    buf = bytearray()
    while True:
        try:
            chunk = source.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            _close(sink)
            return
        buf += chunk
        start = 0
        while (end := reply_end(buf, start)) is not None:
            if not handle(bytes(buf[start:end])):
                _close(source)
                _close(sink)
                return
            start = end
        if start:
            try:
                sink.sendall(buf[:start])
            except OSError:
                _close(source)
                return
            del buf[:start]


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
