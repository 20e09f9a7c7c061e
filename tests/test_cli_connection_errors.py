"""Each way a connection fails has its own message (the installed ``rac-store``, real servers).

Refused, timed out, wrong or missing credentials, a database the server does not
have, TLS (a CA file that cannot be read, a CA that did not sign the server's
certificate, TLS to a plaintext port and plaintext to a TLS port), a Redis Cluster
node named by a plain URL, and a port where something else answers. Every message names
the URL without credentials.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from collections.abc import Iterator

import pytest
import redis

from rac_store import AuditStore
from rac_store.cli.connection_errors import explain

from .support.cli import RAC_STORE
from .support.cluster import LocalCluster
from .support.redis_server import RedisServer, free_port, running_redis
from .support.tls import make_tls_files

PASSWORD = "s3cret-pw"


def pending(url: str, *options: str) -> subprocess.CompletedProcess[str]:
    """``rac-store pending`` against ``url``; a hang past 30 s fails the test."""
    env = {k: v for k, v in os.environ.items() if k != "RAC_REDIS_URL"}
    return subprocess.run(
        [RAC_STORE, "pending", "--redis-url", url, *options],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def message(url: str, *options: str) -> str:
    done = pending(url, *options)
    assert done.returncode == 2 and done.stdout == "", done
    assert "Traceback" not in done.stderr and PASSWORD not in done.stderr
    assert done.stderr.startswith("rac-store: ") and done.stderr.count("\n") == 1, done.stderr
    return done.stderr.removeprefix("rac-store: ").strip()


@pytest.fixture(scope="module")
def locked() -> Iterator[RedisServer]:
    """A server with ``requirepass``."""
    with running_redis(password=PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A server that speaks only TLS, with a certificate of a throw-away CA."""
    files = make_tls_files(tmp_path_factory.mktemp("tls"))
    with running_redis(tls=files) as server:
        yield server


def test_refused() -> None:
    port = free_port()
    assert message(f"redis://127.0.0.1:{port}/0") == (
        f"cannot connect to redis://127.0.0.1:{port}/0: connection refused"
        " (is Redis running there?)"
    )


def test_timeout(redis_server: RedisServer) -> None:
    sleeper = redis_server.client()
    busy = threading.Thread(target=sleeper.execute_command, args=("DEBUG", "SLEEP", "4"))
    busy.start()
    try:
        text = message(redis_server.url, "--timeout", "1")
    finally:
        busy.join()
        sleeper.close()
    assert text == (
        f"no answer from {redis_server.url} within 1 s (timeout: --timeout to change it)"
    )


def test_wrong_credentials(locked: RedisServer) -> None:
    url = f"redis://:wrong-{PASSWORD}@127.0.0.1:{locked.port}/0"
    assert message(url) == (
        f"redis://127.0.0.1:{locked.port}/0 refused the credentials: wrong user name or password"
    )
    as_user = f"redis://nobody:{PASSWORD}@127.0.0.1:{locked.port}/0"
    assert "refused the credentials" in message(as_user)


def test_missing_credentials(locked: RedisServer) -> None:
    text = message(f"redis://127.0.0.1:{locked.port}/0")
    assert text.startswith(f"redis://127.0.0.1:{locked.port}/0 requires a password")
    resp2 = message(f"redis://127.0.0.1:{locked.port}/0?protocol=2")  # AUTH-less RESP2: NOAUTH
    assert "requires a password" in resp2


def test_wrong_database(locked: RedisServer) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{locked.port}/99"
    assert message(url) == (
        f"redis://127.0.0.1:{locked.port}/99: database 99 does not exist on this server"
        " (DB index is out of range)"
    )


def test_tls_ca_file_missing(tls_server: RedisServer) -> None:
    url = f"rediss://127.0.0.1:{tls_server.port}/0?ssl_ca_certs=/nonexistent/ca.pem"
    assert message(url).startswith("cannot read /nonexistent/ca.pem")


def test_tls_certificate_not_trusted(tls_server: RedisServer) -> None:
    text = message(f"rediss://127.0.0.1:{tls_server.port}/0")
    assert text.startswith(f"TLS handshake with rediss://127.0.0.1:{tls_server.port}/0 failed:")
    assert "CERTIFICATE_VERIFY_FAILED" in text


def test_tls_to_a_plaintext_port_fails_within_the_timeout(redis_server: RedisServer) -> None:
    url = f"rediss://127.0.0.1:{redis_server.port}/0"
    assert message(url, "--timeout", "1") == (
        f"no TLS answer from {url} within 1 s: is it a plaintext port?"
        " (redis:// is Redis without TLS)"
    )


def test_plaintext_to_a_tls_port(tls_server: RedisServer) -> None:
    url = f"redis://127.0.0.1:{tls_server.port}/0"
    assert message(url) == f"{url} closed the connection at once: is it a TLS port? (use rediss://)"


def test_tls_works_with_the_ca_in_the_url(tls_server: RedisServer) -> None:
    assert tls_server.tls is not None
    url = f"rediss://127.0.0.1:{tls_server.port}/0?ssl_ca_certs={tls_server.tls.ca_cert}"
    AuditStore.from_url(url, client_options={"ssl_ca_certs": str(tls_server.tls.ca_cert)})
    done = pending(url)
    assert done.returncode == 0, done.stderr


@pytest.mark.cluster
def test_a_cluster_node_named_by_a_plain_url(redis_cluster: LocalCluster) -> None:
    redis_cluster.flush()
    AuditStore(redis_cluster.client()).close()  # a store, so that only the URL is wrong
    for port in redis_cluster.primary_ports():
        url = f"redis://127.0.0.1:{port}/0"
        assert message(url) == (
            f"{url} is a node of a Redis Cluster: name the cluster as"
            f" redis+cluster://127.0.0.1:{port} (any node is a seed)"
        )
    done = pending(f"redis+cluster://127.0.0.1:{redis_cluster.primary_ports()[0]}")
    assert done.returncode == 0, done.stderr


def test_a_server_that_is_not_redis() -> None:
    """An HTTP server on the port: said so, with the URL, not as a store error."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"redis://127.0.0.1:{server.server_address[1]}/0"
        said = message(url)
    finally:
        server.shutdown()
        server.server_close()
    assert said.startswith(f"{url} answered, but not as Redis does: is it a Redis port? (")
    assert "Protocol error" in said and "StoreResponseError" not in said


def test_a_cause_repeated_down_the_chain_is_said_once() -> None:
    lost = redis.exceptions.ConnectionError("Connection closed by server.")
    try:
        try:
            raise lost
        except redis.exceptions.ConnectionError as exc:
            raise redis.exceptions.ConnectionError("Connection closed by server.") from exc
    except redis.exceptions.ConnectionError as outer:
        said = explain(outer, "redis://127.0.0.1:1/0", 1.0)
    assert said == "cannot reach redis://127.0.0.1:1/0: Connection closed by server."
