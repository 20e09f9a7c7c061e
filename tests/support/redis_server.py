"""Private redis-server processes for tests (the code lives in ``rac_store._redis_process``).

The benchmark runner starts its servers the same way, so the logic exists once
in the package; this module keeps the tests' import path.
"""

from rac_store._redis_process import (
    RESERVED_PORTS,
    RedisServer,
    free_port,
    redis_server_binary,
    running_redis,
)

__all__ = ["RESERVED_PORTS", "RedisServer", "free_port", "redis_server_binary", "running_redis"]
