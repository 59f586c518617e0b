"""Tests for app.services.features.FeatureStore: id -> row map in every add order, re-adds."""

from __future__ import annotations

import numpy as np

from app.services.features import FeatureStore


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
