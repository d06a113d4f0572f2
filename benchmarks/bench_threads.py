"""Load runs shared by the routing benchmarks: N threads working while a sampler watches."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def run_sampled(work: Callable[[int], None], threads: int, sample: Callable[[], None],
                stop: threading.Event) -> float:
    """Run ``work(worker)`` on ``threads`` threads while ``sample`` runs beside them until
    ``stop`` is set; the wall seconds of the work."""
    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(threads)))
    finally:
        elapsed = time.perf_counter() - start
        stop.set()
        sampler.join()
    return elapsed
