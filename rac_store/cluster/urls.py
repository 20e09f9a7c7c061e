"""Cluster URLs: ``redis+cluster://`` and seed lists, turned into what redis-py reads.

A cluster is named by the scheme ``redis+cluster://host:port`` (or
``rediss+cluster://`` with TLS), or by ``cluster=True`` with a plain
``redis://`` URL. Either way the hosts are only seeds: the client discovers
every node from the first that answers. A cluster URL may list several seeds,
``redis+cluster://user:pass@h1:7000,h2:7000,h3:7000/0``, so that a client can
start while one of them is down. A cluster has a single database, so a path
other than ``/0`` is refused.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from ..errors import InvalidInputError

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""URL schemes that name a Redis Cluster, and the plain scheme each stands for."""

NODE_SCHEMES = ("redis", "rediss", "unix")
"""URL schemes of one Redis node."""


_SECRET_QUERY = re.compile(r"(?i)\b(password|username)=[^&#]*")


def split_user_info(url: str) -> tuple[str, str, str]:
    """``url``'s scheme, its user info (``user:password``, or ""), and what follows that.

    The user info ends at the last '@' before the query: a password may hold an unencoded
    '/' or '@' (urlsplit would then read a piece of it as the host or the path).
    """
    scheme, _, rest = url.partition("://")
    head, mark, query = rest.partition("?")
    user_info, _, place = head.rpartition("@")
    return scheme, user_info, place + mark + query


def redacted(url: str) -> str:
    """``url`` without its user and password (also ``password=`` in the query), for messages."""
    scheme, _, rest = split_user_info(url)
    rest = _SECRET_QUERY.sub(r"\1=***", rest)  # the query, with or without a path before it
    return f"{scheme}://{rest}"[:200]


def split_cluster_url(url: str, cluster: bool | None = None) -> tuple[str, bool]:
    """The plain URL redis-py reads, and whether it names a cluster.

    ``cluster=None`` lets the scheme decide; True or False must agree with it.
    """
    if not isinstance(url, str) or "://" not in url:
        raise InvalidInputError(f"not a Redis URL: {redacted(str(url))!r}")
    given = url
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in CLUSTER_SCHEMES:
        if cluster is False:
            raise InvalidInputError(f"{scheme}:// names a cluster, but cluster=False was given")
        url, cluster = f"{CLUSTER_SCHEMES[scheme]}://{rest}", True
    elif scheme not in NODE_SCHEMES:
        raise InvalidInputError(f"unsupported URL scheme {scheme!r} in {redacted(url)!r}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed '[' around an IPv6 host
        raise InvalidInputError(f"not a Redis URL ({exc}): {redacted(given)!r}") from None
    try:
        if "," not in parts.netloc:  # one host: its port must read as a number
            parts.port  # noqa: B018 (read for its ValueError)
    except ValueError:  # not the error's text: with a '/' in a password, the "port" is part of it
        raise InvalidInputError(
            f"not a Redis URL (a port is not a number): {redacted(given)!r}"
        ) from None
    if cluster:
        if scheme == "unix":
            raise InvalidInputError("a Redis Cluster is reached over TCP, not a unix socket")
        if parts.path.strip("/") not in ("", "0"):
            raise InvalidInputError(f"a Redis Cluster has only database 0: {redacted(url)!r}")
        if not parts.netloc.rpartition("@")[2].strip(","):
            raise InvalidInputError(f"a Redis Cluster URL names a seed host: {redacted(given)!r}")
    elif "," in parts.netloc.rpartition("@")[2]:
        raise InvalidInputError(f"several hosts name a cluster, not one node: {redacted(url)!r}")
    return url, bool(cluster)


def split_seeds(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A plain URL with the first host of a seed list, and the other seeds' (host, port)."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    first, *others = hosts.split(",")
    seeds = []
    for address in others:
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            raise InvalidInputError(f"a seed must be host:port, got {address!r:.100}")
        seeds.append((host.strip("[]"), int(port)))
    netloc = f"{userinfo}{at}{first}"
    return urlunsplit(parts._replace(netloc=netloc)), seeds
