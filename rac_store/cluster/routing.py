"""A short path for commands on a Redis Cluster: straight to the slot's primary.

Every call of the store touches one hash slot (all its keys share one tag), so
the primary to ask is known from the first key. redis-py's cluster client finds
it too, but spends about a third of an ack's client CPU on that (it hashes every
key twice, resolves policies, records metrics). :class:`ClusterRouter` asks the
cluster client's own slot map for the node and sends the command on that node's
client. Anything a cluster adds to a reply (MOVED or ASK after a slot moved,
TRYAGAIN during a migration, CLUSTERDOWN, a lost node) sends the command again
through the cluster client, which follows the redirection, refreshes its slot
map and retries as usual. Re-sending is safe: these replies mean the command did
not run (a lost connection may have run it; every script is idempotent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import redis.exceptions as rexc

from ..scripts import Arg

REROUTE_ERRORS: tuple[type[Exception], ...] = (
    rexc.AskError,  # MovedError is a subclass
    rexc.TryAgainError,
    rexc.ClusterError,
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.RedisClusterException,
)
"""Errors of the short path after which the cluster client takes the command over."""


class ClusterRouter:
    """Sends commands of a ``redis.cluster.RedisCluster`` to the slot's primary first."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.rerouted: Counter[str] = Counter()
        """Commands the short path handed over to the cluster client, by error."""

    def execute(self, command: Sequence[Arg], key: str) -> Any:
        """``command`` on the primary that serves ``key``; the cluster client's way on refusal."""
        client = self._client
        try:
            direct = client.get_redis_connection(client.get_node_from_key(key))
            return direct.execute_command(*command)
        except rexc.AuthenticationError:
            raise
        except REROUTE_ERRORS as exc:
            self.rerouted[type(exc).__name__] += 1
        return client.execute_command(*command)
