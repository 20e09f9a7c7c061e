"""Timing primitives: per-call samples, percentiles, interleaved blocks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``samples``, nearest rank."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    return float(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))])


def time_each(call: Callable[[T], Any], items: Iterable[T]) -> list[float]:
    """Microseconds taken by ``call(item)`` for each item."""
    clock = time.perf_counter_ns
    samples = []
    for item in items:
        start = clock()
        call(item)
        samples.append((clock() - start) / 1000)
    return samples


def time_repeat(call: Callable[[], Any], count: int) -> list[float]:
    """Microseconds taken by each of ``count`` calls of ``call()``."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(count):
        start = clock()
        call()
        samples.append((clock() - start) / 1000)
    return samples


def rate(count: int, seconds: float) -> float:
    """Operations per second."""
    return count / seconds if seconds > 0 else float("inf")


def interleaved(blocks: int, phases: Sequence[Callable[[int], list[float]]]) -> list[list[float]]:
    """Run each phase once per block, rotating which goes first; samples per phase.

    ``phases[i](block)`` times one block and returns its samples. Rotating the
    order cancels drift (the machine getting busier or quieter) between phases.
    """
    samples: list[list[float]] = [[] for _ in phases]
    for block in range(blocks):
        for offset in range(len(phases)):
            index = (block + offset) % len(phases)
            samples[index].extend(phases[index](block))
    return samples
