"""A short path for script calls on a Redis Cluster: straight to the slot's primary.

Every call of the store touches one hash slot (all its keys share one tag), so
the primary to ask is known from the first key. redis-py's cluster client finds
it too, but spends about a third of an ack's client CPU on that (it hashes every
key twice, resolves policies, records metrics). :class:`ClusterRouter` asks the
cluster client's own slot map for the node and sends the EVALSHA on that node's
client. Anything a cluster adds to a reply (MOVED or ASK after a slot moved,
TRYAGAIN during a migration, CLUSTERDOWN, a lost node) sends the call again
through the cluster client, which follows the redirection, refreshes its slot
map and retries as usual. NOSCRIPT loads the script on every primary (as
redis-py does for a cluster) and re-sends once. Re-sending is safe: every script is idempotent, and
these replies mean the script did not run (a lost connection may have run it;
idempotency covers that too).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import redis.exceptions as rexc

from .core import Arg

REROUTE_ERRORS: tuple[type[Exception], ...] = (
    rexc.NoScriptError,  # again, right after the reload: a failover or flush raced it
    rexc.AskError,  # MovedError is a subclass
    rexc.TryAgainError,
    rexc.ClusterError,
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.RedisClusterException,
)
"""Errors of the short path after which the cluster client takes the call over."""


class ClusterRouter:
    """Runs scripts on a ``redis.cluster.RedisCluster``, on the slot's primary first."""

    def __init__(self) -> None:
        self.rerouted: Counter[str] = Counter()
        """Calls the short path handed over to the cluster client, by error (``MovedError``...)."""

    def run(self, client: Any, script: Any, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """``script(keys, args)`` on the primary of ``client`` that serves ``keys[0]``."""
        try:
            node = client.get_node_from_key(keys[0])
            direct = client.get_redis_connection(node)
            try:
                return direct.evalsha(script.sha, len(keys), *keys, *args)
            except rexc.NoScriptError:
                script.sha = client.script_load(script.script)  # on every primary
                return direct.evalsha(script.sha, len(keys), *keys, *args)
        except rexc.AuthenticationError:
            raise
        except REROUTE_ERRORS as exc:
            self.rerouted[type(exc).__name__] += 1
        return script(keys, args, client)
