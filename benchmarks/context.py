"""The run's settings (sizes for --quick and the full run) and its Redis."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, fields, replace
from typing import Any

import redis

from rac_store import AuditStore
from rac_store.embedded import create_embedded_client

from .baseline import LegacyAuditStore


@dataclass(frozen=True)
class Sizes:
    """How much each figure measures. The figures' own definitions (10,000 acks
    already in a run, batches of 100, a run of 100 acks, 1,000 due runs, 8
    processes, 2,000 due runs to sweep) stay fixed in the full run; --quick has
    fewer repetitions, a smaller index and fewer runs to sweep."""

    latency_blocks: int = 20
    latency_block: int = 500
    flat_acks: int = 4000
    flat_legacy_acks: int = 40
    throughput_acks: int = 1000
    throughput_rounds: int = 5
    batch_acks: int = 8000
    batch_rounds: int = 20
    index_pending: int = 1_000_000
    index_rounds: int = 40
    lost_acks: int = 2000
    embedded_blocks: int = 10
    embedded_block: int = 200
    profile_acks: int = 3000
    sweep_runs: int = 2000
    web_pending: int = 100_000
    web_findings: int = 100_000
    web_acks: int = 10_000
    web_requests: int = 200
    peer_blocks: int = 20
    peer_block: int = 200
    server_time_acks: int = 3000
    server_time_blocks: int = 10
    memory_runs: int = 30_000

    def scaled(self, factor: float) -> Sizes:
        """Every repetition count times ``factor`` (at least 1 each)."""
        scaled = {f.name: max(1, round(getattr(self, f.name) * factor)) for f in fields(self)}
        return replace(self, **scaled)


FULL = Sizes()
QUICK = Sizes(
    latency_blocks=8,
    latency_block=150,
    flat_acks=600,
    flat_legacy_acks=8,
    throughput_acks=300,
    throughput_rounds=2,
    batch_acks=1200,
    batch_rounds=6,
    index_pending=100_000,
    index_rounds=15,
    lost_acks=300,
    embedded_blocks=4,
    embedded_block=100,
    profile_acks=800,
    sweep_runs=400,
    web_pending=10_000,
    web_findings=10_000,
    web_acks=10_000,
    web_requests=30,
    peer_blocks=6,
    peer_block=100,
    server_time_acks=600,
    server_time_blocks=4,
    memory_runs=3_000,
)

WORKERS = 8
FLAT_PREFILL = 10_000
BATCH = 100
MEMORY_ACKS = 100
DUE_RUNS = 1_000


@dataclass
class Bench:
    """One benchmark run: its Redis, its sizes, and a key prefix nobody else uses."""

    url: str
    sizes: Sizes
    own_server: bool
    quick: bool = False
    prefix: str = f"racbench{os.getpid()}"

    def client(self) -> redis.Redis:
        """A new client of the benchmark's Redis."""
        return redis.Redis.from_url(self.url)

    def namespace(self, name: str) -> str:
        """A fresh key prefix for one figure's data."""
        return f"{self.prefix}{name}{uuid.uuid4().hex[:6]}"

    def store(self, name: str, **options: Any) -> AuditStore:
        """A store on the benchmark's Redis, in a namespace of its own."""
        return AuditStore(self.client(), prefix=self.namespace(name), **options)

    def embedded_store(self, **options: Any) -> AuditStore:
        """A store on a new embedded server (the MEMORY default)."""
        return AuditStore(create_embedded_client(), **options)

    def legacy(self, name: str) -> LegacyAuditStore:
        """The old design on the benchmark's Redis."""
        return LegacyAuditStore(self.client(), prefix=self.namespace(name))

    def cleanup(self) -> None:
        """Delete every key this run wrote (only needed on a server we did not start).

        Every key has the run's prefix in its name (at its start, or after rq's and
        Celery's own prefixes).
        """
        client = self.client()
        batch: list[bytes] = []
        # rq's and Celery's keys (benchmarks/peers.py) carry the prefix inside their names
        for key in client.scan_iter(match=f"*{self.prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
        client.close()
