"""Tests for app.services.features.FeatureStore: id -> row map in every add order, re-adds."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.services.features import FeatureStore
from app.services.search import rerank_candidates
from index.rerank import rerank, similarity_divisors


def test_any_add_order_re_add_and_remove() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 3)).astype(np.float16).astype(np.float32)
    ids = rng.permutation(1000)[:40].astype(np.int64)
    store = FeatureStore(3, capacity=2)
    for chunk in np.array_split(np.arange(40), 5):  # unsorted ids, several adds, growth
        store.add(ids[chunk], feats[chunk])
    store.add(np.array([ids[7]]), np.array([[1.0, 2.0, 3.0]]))  # replaces the old row
    store.remove(ids[:3])
    query = np.concatenate([ids[::-1], [5000]])
    present, got = store.take(query)
    assert present.tolist() == [True] * 37 + [False] * 4
    want = feats.copy()
    want[7] = [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(got, want[::-1][:37])
    assert len(store) == 37 and ids[3] in store and ids[0] not in store
    assert got.dtype == np.float32 and got.flags.c_contiguous


def test_features_are_rounded_like_the_database_copy() -> None:
    store = FeatureStore(1)
    store.add(np.array([1]), np.array([[0.1]], np.float32))
    assert store.get(np.array([1]))[1][0, 0] == np.float32(np.float16(0.1))
    assert store.take(np.array([2]))[0].tolist() == [False]


def _store_with(ids: np.ndarray, seed: int = 0, dim: int = 6) -> tuple[FeatureStore, np.ndarray]:
    feats = np.random.default_rng(seed).normal(size=(ids.shape[0], dim))
    store = FeatureStore(dim, capacity=4)
    for chunk in np.array_split(np.arange(ids.shape[0]), 3):
        store.add(ids[chunk], feats[chunk])
    return store, feats.astype(np.float16).astype(np.float32)


@pytest.mark.parametrize("huge", [False, True])  # dense id -> row map, or the sorted-id fallback
def test_take_prepared_matches_take_with_divisors(huge: bool) -> None:
    ids = np.random.default_rng(1).permutation(np.arange(1, 400))[:120].astype(np.int64)
    if huge:
        ids[::7] += 1 << 40
    store, feats = _store_with(ids)
    assert (store._snap.dense is None) == huge
    store.remove(ids[:5])
    probe = np.concatenate([ids[::-1], [0, -3, 10**6, 1 << 41, 1 << 62]])
    present, want = store.take(probe)
    got_present, got, divisors, limit = store.take_prepared(probe)
    assert got_present is not None
    np.testing.assert_array_equal(got_present, present)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(divisors, similarity_divisors(want))
    assert present.sum() == 115 and (limit is None) == huge
    if limit is not None:
        assert probe[present].max() < limit <= 1 << 32
    all_present = ids[5:][::-1]
    mask, got, _, _ = store.take_prepared(all_present)
    assert mask is None
    np.testing.assert_array_equal(got, feats[5:][::-1])


def test_id_map_switches_between_dense_and_sorted() -> None:
    store, _ = _store_with(np.arange(1, 50))
    assert store._snap.dense is not None
    store.add(np.array([1 << 40]), np.ones((1, 6)))
    assert store._snap.dense is None and (1 << 40) in store
    store.remove(np.array([1 << 40]))
    assert store._snap.dense is not None and (1 << 40) not in store and 49 in store
    store.add(np.array([0]), np.ones((1, 6)))  # id 0: the dense map's entry 0 must stay empty
    assert store._snap.dense is None and 0 in store and -1 not in store


def test_readers_see_consistent_rows_while_writers_change_the_store() -> None:
    # Each id's feature row is [id, id, ...]: a reader checks every row it gets against its id.
    dim = 4
    store = FeatureStore(dim, capacity=2)
    store.add(np.arange(1, 200), np.repeat(np.arange(1, 200.0)[:, None], dim, axis=1))
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        probe = np.arange(0, 700, dtype=np.int64)
        while not stop.is_set():
            present, feats, divisors, _ = store.take_prepared(probe)
            got = probe if present is None else probe[present]
            if not (feats == got[:, None]).all() or not (divisors == 4.0 * got).all():
                errors.append("row does not belong to its id")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    for start in range(200, 600, 40):
        new = np.arange(start, start + 40)
        store.add(new, np.repeat(new[:, None].astype(float), dim, axis=1))
        store.remove(new[::3])
        store.add(new[::6], np.repeat(new[::6, None].astype(float), dim, axis=1))  # re-add
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors


def test_rerank_candidates_matches_rerank_and_drops_missing_ids() -> None:
    rng = np.random.default_rng(3)
    ids = np.arange(1, 301, dtype=np.int64)
    store, feats = _store_with(ids, seed=3, dim=16)
    store.remove(ids[::10])
    query = rng.normal(size=16).astype(np.float32)
    cand = rng.permutation(ids)[:120]
    hamming = rng.integers(0, 65, 120).astype(np.int32)
    keep = ~np.isin(cand, ids[::10])
    for weight in (0.0, 0.25):
        want = rerank(query, cand[keep], feats[cand[keep] - 1], hamming[keep], 15, weight, bits=64)
        got = rerank_candidates(store, query, cand, hamming, 15, weight, 64)
        pairs = zip(want.ids.tolist(), want.hamming.tolist(), strict=True)
        assert [(i, h) for i, h, _ in got] == list(pairs)
        similarity = np.array([s for _, _, s in got], np.float32)
        if weight:  # the numpy path: bit for bit
            assert np.array_equal(similarity, want.similarity)
        else:  # the compiled kernel: the same up to float32 summation order
            np.testing.assert_allclose(similarity, want.similarity, rtol=0, atol=1e-6)
    assert rerank_candidates(store, query, ids[::10], hamming[:30], 5, 0.0, 64) == []
    assert rerank_candidates(store, query, ids[:0], hamming[:0], 5, 0.0, 64) == []


def test_rank_leaves_ids_past_the_kernel_limit_to_the_numpy_path() -> None:
    store = FeatureStore(4)
    huge = np.array([5, 2**32 + 7], np.int64)
    store.add(huge, np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32))
    query = np.array([0, 1, 0, 0], np.float32)
    assert store.rank(huge, query, 2) is None
    got = rerank_candidates(store, query, huge, np.array([3, 1], np.int32), 2, 0.0, 64)
    assert [g[0] for g in got] == [2**32 + 7, 5]
