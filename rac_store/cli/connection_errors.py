"""What went wrong between a command and its Redis, in words an operator can act on.

The store raises typed errors (:mod:`rac_store.errors`) that keep the Redis or
socket error as their cause. :func:`explain` reads that chain and tells apart a
refused connection, a timeout, wrong or missing credentials, a database index
the server does not have, a TLS failure (a CA file that cannot be read, a failed
handshake, TLS spoken to a plaintext port or the reverse) and a Redis Cluster
node named by a plain URL. Every URL it prints is redacted.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import redis.exceptions as rexc

from ..cluster.urls import redacted

_WRONG_CREDENTIALS = ("WRONGPASS", "invalid username-password pair", "invalid password")
_NO_CREDENTIALS = ("NOAUTH", "Authentication required", "HELLO must be called with the client")
_CLUSTER_HINTS = ("MOVED", "ASK ", "CLUSTERDOWN", "cluster mode", "cluster support disabled")


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors behind it (``__cause__`` / ``__context__``), nearest first."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


@dataclass(frozen=True)
class Failure:
    """One failed connection attempt: the error chain and where it was going."""

    chain: tuple[BaseException, ...]
    url: str
    timeout: float

    @property
    def shown(self) -> str:
        """The URL as it may be printed."""
        return redacted(self.url)

    @property
    def text(self) -> str:
        """Every message of the chain."""
        return " | ".join(dict.fromkeys(str(e) for e in self.chain))  # each message once

    @property
    def tls(self) -> bool:
        """True for a ``rediss://`` URL."""
        return urlsplit(self.url).scheme.lower().startswith("rediss")

    def has(self, kinds: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
        """True when an error of ``kinds`` is in the chain."""
        return any(isinstance(e, kinds) for e in self.chain)

    def says(self, *markers: str) -> bool:
        """True when a message of the chain contains one of ``markers``."""
        return any(marker in self.text for marker in markers)

    def ssl_error(self) -> ssl.SSLError | None:
        """The TLS error of the chain (not a handshake timeout), if any."""
        found = (e for e in self.chain if isinstance(e, ssl.SSLError))
        return next((e for e in found if not isinstance(e, TimeoutError)), None)


def _tls_files(f: Failure) -> str:
    query = parse_qs(urlsplit(f.url).query)
    names = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
    files = ", ".join(path for name in names for path in query.get(name, []))
    return f"cannot read {files or 'the TLS files'} (ssl_ca_certs / ssl_certfile / ssl_keyfile)"


def _tls_handshake(f: Failure) -> str:
    error = f.ssl_error()
    reason = (error.reason if error is not None else None) or error
    return f"TLS handshake with {f.shown} failed: {reason}"


def _database(f: Failure) -> str:
    parts = urlsplit(f.url)
    number = parts.path.strip("/") or parse_qs(parts.query).get("db", ["0"])[0]
    return f"{f.shown}: database {number} does not exist on this server (DB index is out of range)"


def _not_redis(f: Failure) -> str:
    said = next((str(e) for e in f.chain if isinstance(e, rexc.InvalidResponse)), f.text)
    return f"{f.shown} answered, but not as Redis does: is it a Redis port? ({said})"


def _cluster(f: Failure) -> str:
    scheme, _, rest = f.shown.partition("://")
    seed = rest.split("/")[0]
    return (
        f"{f.shown} is a node of a Redis Cluster: name the cluster as"
        f" {scheme}+cluster://{seed} (any node is a seed)"
    )


Rule = tuple[Callable[[Failure], bool], Callable[[Failure], str]]

RULES: tuple[Rule, ...] = (
    (lambda f: f.tls and f.has(FileNotFoundError), _tls_files),
    (lambda f: f.ssl_error() is not None, _tls_handshake),
    (
        lambda f: f.tls and f.has((rexc.TimeoutError, TimeoutError)) and f.says("handshake"),
        lambda f: (
            f"no TLS answer from {f.shown} within {f.timeout:g} s: is it a plaintext"
            " port? (redis:// is Redis without TLS)"
        ),
    ),
    (
        lambda f: f.has((rexc.TimeoutError, TimeoutError)),
        lambda f: (
            f"no answer from {f.shown} within {f.timeout:g} s (timeout: --timeout to change it)"
        ),
    ),
    (
        lambda f: f.has(ConnectionRefusedError) or f.says("Connection refused"),
        lambda f: f"cannot connect to {f.shown}: connection refused (is Redis running there?)",
    ),
    (
        lambda f: not f.tls and f.has(ConnectionResetError),
        lambda f: f"{f.shown} closed the connection at once: is it a TLS port? (use rediss://)",
    ),
    (
        lambda f: f.says(*_WRONG_CREDENTIALS),
        lambda f: f"{f.shown} refused the credentials: wrong user name or password",
    ),
    (
        lambda f: f.says(*_NO_CREDENTIALS),
        lambda f: (
            f"{f.shown} requires a password: put it in the URL,"
            " redis://USER:PASSWORD@host:port/db (or only :PASSWORD@)"
        ),
    ),
    (lambda f: f.says("DB index is out of range"), _database),
    (
        lambda f: (
            "+cluster://" not in f.url  # a plain URL given to a cluster node
            and (f.has((rexc.MovedError, rexc.AskError)) or f.says(*_CLUSTER_HINTS))
        ),
        _cluster,
    ),
    (lambda f: f.has(rexc.InvalidResponse) or f.says("Protocol error, got"), _not_redis),
    (
        lambda f: f.has((rexc.ConnectionError, ConnectionError)),
        lambda f: f"cannot reach {f.shown}: {f.text}",
    ),
)
"""(does it apply, the message), in order: the first that applies is the explanation."""


def explain(exc: BaseException, url: str, timeout: float) -> str | None:
    """The operator's message for a failed connection to ``url``; None when it is not one."""
    failure = Failure(tuple(causes(exc)), url, timeout)
    for applies, message in RULES:
        if applies(failure):
            return message(failure)
    return None
