# Copyright: gitops.k8s contributors; Apache License 2.0 (see LICENSE)
"""The one way the engine runs work side by side: requests wait on the network, not the CPU."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def each(concurrency, func, items):
    """``[func(item) for item in items]``, at most ``concurrency`` at a time, results in order."""
    items = list(items)
    if not items:
        return []
    if len(items) == 1 or concurrency <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(func, items))
