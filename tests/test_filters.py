"""The per-process cache of filter results: hits, invalidation, and no stale keep after a race."""

from __future__ import annotations

import numpy as np

from app.services.filters import FilterCache


def test_cached_until_invalidated() -> None:
    cache, loads = FilterCache(), []

    def load() -> np.ndarray:
        loads.append(1)
        return np.array([1, 2], np.int64)

    assert cache.allowed_ids(("a", None), load).tolist() == [1, 2]
    assert cache.allowed_ids(("a", None), load).tolist() == [1, 2]
    assert len(loads) == 1
    cache.invalidate()
    cache.allowed_ids(("a", None), load)
    assert len(loads) == 2


def test_a_write_during_the_load_keeps_the_result_out_of_the_cache() -> None:
    cache = FilterCache()

    def load_racing_a_write() -> np.ndarray:
        cache.invalidate()  # a write commits while this (older) result is being read
        return np.array([7], np.int64)

    assert cache.allowed_ids("k", load_racing_a_write).tolist() == [7]
    fresh = cache.allowed_ids("k", lambda: np.array([7, 8], np.int64))
    assert fresh.tolist() == [7, 8]  # the racing result was used once, not kept


def test_the_cache_stays_bounded() -> None:
    cache = FilterCache(max_entries=3)
    for key in range(10):
        cache.allowed_ids(key, lambda: np.array([1], np.int64))
    assert len(cache._entries) <= 3
