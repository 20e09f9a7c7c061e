"""Start and stop a private Redis Cluster on free loopback ports.

A :class:`LocalCluster` is 3 primaries and 3 replicas by default, each a
:class:`~tests.support.redis_server.RedisServer` with ``--cluster-enabled yes``
in its own directory, joined by ``redis-cli --cluster create``. ``start``
returns once every node reports ``cluster_state:ok``, agrees on the slot map,
and every replica is in sync with its primary. Port 6379 is never used, and
every node's cluster bus port (port + 10000) is free when it is chosen.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import RedisCluster

from rac_store.cluster import is_cluster

from .redis_server import RedisServer, free_port

BUS_PORT_OFFSET = 10000


def redis_cli_binary() -> str:
    """The redis-cli on PATH; a clear failure when there is none."""
    path = shutil.which("redis-cli")
    if path is None:
        raise RuntimeError("redis-cli is not installed: apt-get install redis-tools")
    return path


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (port + 10000) is free as well."""
    while True:
        port = free_port()
        bus = port + BUS_PORT_OFFSET
        if port not in taken and bus not in taken and _port_is_free(bus):
            return port


@dataclass(frozen=True)
class NodeInfo:
    """One line of ``CLUSTER NODES`` as seen by some node."""

    node_id: str
    port: int
    role: str  # "master" or "slave"
    primary_id: str  # "-" for a primary
    slots: tuple[tuple[int, int], ...]


def parse_cluster_nodes(text: str) -> list[NodeInfo]:
    """The nodes of a ``CLUSTER NODES`` reply (importing/migrating marks ignored)."""
    nodes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        flags = parts[2].split(",")
        role = "master" if "master" in flags else "slave"
        port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
        slots = []
        for item in parts[8:]:
            if item.startswith("["):
                continue
            low, _, high = item.partition("-")
            slots.append((int(low), int(high or low)))
        nodes.append(NodeInfo(parts[0], port, role, parts[3], tuple(slots)))
    return nodes


class LocalCluster:
    """A Redis Cluster of ``primaries`` primaries, each with ``replicas`` replicas."""

    def __init__(self, primaries: int = 3, replicas: int = 1, node_timeout_ms: int = 2000):
        self.primary_count = primaries
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self._taken: set[int] = set()
        self.servers = [self._new_node() for _ in range(primaries * (1 + replicas))]

    def _new_node(self) -> RedisServer:
        """A cluster node (not started) on a port nobody else in this cluster uses."""
        port = free_cluster_port(self._taken)
        self._taken.add(port)
        server = RedisServer(port=port)
        server.extra_args += [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(server.dir / "nodes.conf"),
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
            "--repl-diskless-sync-delay",  # replicas sync at once, not after 5 s
            "0",
        ]
        return server

    # -- life cycle ------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> LocalCluster:
        """Start every node, create the cluster and wait until it is fully up."""
        try:
            for index in range(len(self.servers)):
                self._start_node(index)
            self._create()
            self.wait_ready(timeout)
        except BaseException:
            self.cleanup()
            raise
        return self

    def _start_node(self, index: int, attempts: int = 3) -> None:
        """Start node ``index``; on a port taken meanwhile by someone else, on a fresh port."""
        for attempt in range(attempts):
            try:
                self.servers[index].start()
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                self.servers[index].cleanup()
                self.servers[index] = self._new_node()

    def _create(self) -> None:
        addresses = [f"127.0.0.1:{server.port}" for server in self.servers]
        command = [
            redis_cli_binary(),
            "--cluster",
            "create",
            *addresses,
            "--cluster-replicas",
            str(self.replicas),
            "--cluster-yes",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")

    def cleanup(self) -> None:
        """Stop every node and remove its directory."""
        for server in self.servers:
            server.cleanup()

    # -- state -------------------------------------------------------------------------
    @property
    def ports(self) -> list[int]:
        """The client port of every node."""
        return [server.port for server in self.servers]

    def node_client(self, port: int, **options: object) -> redis.Redis:
        """A plain (non-cluster) client of one node."""
        return redis.Redis(host="127.0.0.1", port=port, **options)  # type: ignore[arg-type]

    def client(self, **options: object) -> RedisCluster:
        """A new cluster client that discovers the topology from any node."""
        return RedisCluster(host="127.0.0.1", port=self.servers[0].port, **options)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL listing every node as a seed (see rac_store.connect)."""
        seeds = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        return f"redis+cluster://{seeds}/0"

    def server(self, port: int) -> RedisServer:
        """The node on ``port``."""
        return next(server for server in self.servers if server.port == port)

    def nodes(self) -> list[NodeInfo]:
        """The cluster's nodes as the first reachable node sees them."""
        for port in self.ports:
            with contextlib.suppress(redis.ConnectionError), self.node_client(port) as node:
                return parse_cluster_nodes(node.execute_command("CLUSTER", "NODES").decode())
        raise RuntimeError("no cluster node answers")

    def primary_ports(self) -> list[int]:
        """The ports of the nodes that are primaries now, in slot order."""
        primaries = [n for n in self.nodes() if n.role == "master" and n.slots]
        return [n.port for n in sorted(primaries, key=lambda n: n.slots[0])]

    def replica_of(self, primary_port: int) -> int:
        """The port of a replica of the primary on ``primary_port``."""
        nodes = self.nodes()
        primary = next(n for n in nodes if n.port == primary_port)
        return next(n.port for n in nodes if n.primary_id == primary.node_id)

    def owner_of_slot(self, slot: int) -> int:
        """The port of the primary that serves ``slot``."""
        for node in self.nodes():
            if node.role == "master" and any(lo <= slot <= hi for lo, hi in node.slots):
                return node.port
        raise LookupError(f"no primary serves slot {slot}")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every node says ``cluster_state:ok`` with one slot map, replicas synced."""
        deadline = time.monotonic() + timeout
        problem = "not checked"
        while time.monotonic() < deadline:
            problem = self._readiness_problem()
            if not problem:
                return
            time.sleep(0.1)
        raise RuntimeError(f"cluster not ready within {timeout}s: {problem}")

    def _readiness_problem(self) -> str:
        views = set()
        for port in self.ports:
            try:
                problem, view = self._node_problem(port)
            except redis.RedisError as exc:
                return f"{port}: {exc}"
            if problem:
                return f"{port}: {problem}"
            views.add(tuple(sorted((n.port, n.role, n.primary_id, n.slots) for n in view)))
        if len(views) != 1:
            return "nodes disagree on the topology"
        (view,) = views
        primaries = [n for n in view if n[1] == "master" and n[3]]
        if len(primaries) != self.primary_count:
            return f"{len(primaries)} primaries serve slots"
        return ""

    def _node_problem(self, port: int) -> tuple[str, list[NodeInfo]]:
        """What keeps one node from being ready ("" when nothing), and its view."""
        with self.node_client(port) as node:
            info = node.cluster("INFO")
            view = parse_cluster_nodes(node.execute_command("CLUSTER", "NODES").decode())
            replication = node.info("replication")
        if info.get("cluster_state") != "ok":
            return f"cluster_state {info.get('cluster_state')}", view
        if int(info.get("cluster_known_nodes", 0)) != len(self.servers):
            return f"knows {info.get('cluster_known_nodes')} nodes", view
        if replication["role"] == "slave" and (
            replication.get("master_link_status") != "up"
            or replication.get("master_sync_in_progress")
        ):
            return "replica not in sync", view
        return "", view

    def flush(self) -> None:
        """Empty every primary (replicas follow) and every node's script cache."""
        for port in self.ports:
            with self.node_client(port) as node:
                if node.info("replication")["role"] == "master":
                    node.flushall()
                node.script_flush()

    def flush_scripts(self) -> None:
        """Empty every node's script cache, keeping the data."""
        for port in self.ports:
            with self.node_client(port) as node:
                node.script_flush()

    def wait_replicas_synced(self, timeout: float = 10.0) -> None:
        """Wait until every replica has applied everything its primary sent (WAIT 1)."""
        for port in self.primary_ports():
            with self.node_client(port) as node:
                if node.wait(self.replicas, int(timeout * 1000)) < self.replicas:
                    raise RuntimeError(f"replicas of {port} did not catch up in {timeout}s")


class NodeStats:
    """One open connection per node, to reset and read INFO sections.

    The connections are opened first: a new connection's handshake (``CLIENT
    SETINFO``, unknown to Redis 7.0) would otherwise count as an error.
    """

    def __init__(self, cluster: LocalCluster) -> None:
        self.clients = {port: cluster.node_client(port) for port in cluster.ports}
        for client in self.clients.values():
            client.ping()

    def reset(self) -> None:
        """CONFIG RESETSTAT on every node."""
        for client in self.clients.values():
            client.config_resetstat()

    def read(self, section: str) -> dict[int, dict[str, Any]]:
        """``INFO <section>`` of every node, by port."""
        return {port: client.info(section) for port, client in self.clients.items()}

    def errors(self, port: int) -> Counter[str]:
        """The error replies of one node since the reset, by code (``{"TRYAGAIN": 3}``)."""
        stats = self.clients[port].info("errorstats")
        return Counter({name.removeprefix("errorstat_"): v["count"] for name, v in stats.items()})

    def close(self) -> None:
        """Close every connection."""
        for client in self.clients.values():
            client.close()


def failover(cluster: LocalCluster, primary_port: int, timeout: float = 30.0) -> tuple[int, float]:
    """``CLUSTER FAILOVER`` on a replica of ``primary_port``; its port and the seconds taken.

    Returns once the replica is a primary that serves slots and the old primary
    has become its replica.
    """
    replica_port = cluster.replica_of(primary_port)
    started = time.monotonic()
    with cluster.node_client(replica_port) as replica:
        replica.execute_command("CLUSTER", "FAILOVER")
        deadline = started + timeout
        while True:
            nodes = {n.port: n for n in cluster.nodes()}
            new, old = nodes[replica_port], nodes[primary_port]
            if new.role == "master" and new.slots and old.primary_id == new.node_id:
                return replica_port, time.monotonic() - started
            if time.monotonic() > deadline:
                raise RuntimeError(f"failover of {primary_port} not done within {timeout}s")
            time.sleep(0.01)


@dataclass(frozen=True)
class Migration:
    """What :meth:`LocalCluster.migrate_slot` did."""

    slot: int
    source_port: int
    target_port: int
    keys: int
    seconds: float


Batcher = Callable[[list[bytes]], list[list[bytes]]]
"""Splits a slot's keys into the MIGRATE batches to send first, in order."""


def migrate_slot(
    cluster: LocalCluster,
    slot: int,
    target_port: int,
    batch: int = 10,
    pause: float = 0.0,
    batcher: Batcher | None = None,
) -> Migration:
    """Move ``slot`` to the primary on ``target_port`` the way ``redis-cli --cluster reshard`` does.

    SETSLOT IMPORTING on the target, MIGRATING on the source, MIGRATE the slot's
    keys (first the batches ``batcher`` makes of them, then whatever is left,
    ``batch`` keys at a time, sleeping ``pause`` after each batch to widen the
    window in which clients meet ASK and TRYAGAIN), then SETSLOT NODE on every
    primary.
    """
    nodes = {n.port: n for n in cluster.nodes()}
    source_port = cluster.owner_of_slot(slot)
    if source_port == target_port:
        raise ValueError(f"slot {slot} is already served by {target_port}")
    source_id, target_id = nodes[source_port].node_id, nodes[target_port].node_id
    started = time.monotonic()
    moved = 0
    with cluster.node_client(source_port) as source, cluster.node_client(target_port) as target:

        def send(keys: list[bytes]) -> None:
            nonlocal moved
            reply = source.execute_command(
                "MIGRATE", "127.0.0.1", target_port, "", 0, 5000, "KEYS", *keys
            )
            moved += len(keys) if reply == b"OK" else 0  # NOKEY: all gone meanwhile
            time.sleep(pause)

        target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        if batcher is not None:
            for keys in batcher(
                source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 2**31 - 1)
            ):
                send(keys)
        while keys := source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
            send(keys)
        target.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        source.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    for port, node in nodes.items():
        if node.role == "master" and port not in (source_port, target_port):
            with cluster.node_client(port) as other:
                other.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    return Migration(slot, source_port, target_port, moved, time.monotonic() - started)


@contextlib.contextmanager
def running_cluster(primaries: int = 3, replicas: int = 1) -> Iterator[LocalCluster]:
    """A started cluster, shut down on exit."""
    cluster = LocalCluster(primaries, replicas)
    try:
        yield cluster.start()
    finally:
        cluster.cleanup()


def serving_node(client: Any, key: str) -> Any:
    """The client of the node that serves ``key``: a cluster's primary for it, else ``client``."""
    if not is_cluster(client):
        return client
    return client.get_redis_connection(client.get_node_from_key(key))
