"""Shared timing helper for the benchmark modules."""

from __future__ import annotations

import time


def best_of(fn, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls (the least disturbed by other work on the machine), in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
