"""Tests for index.rerank: content-guided ordering, determinism and the Hamming blend."""

from __future__ import annotations

import numpy as np
import pytest

from index.rerank import rerank, rerank_batch, rerank_prepared, similarity_divisors


def _random_candidates(seed: int, n: int, d: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    query = rng.standard_normal(d).astype(np.float32)
    feats = rng.standard_normal((n, d)).astype(np.float16)
    feats[n // 2 :: 7] = feats[0]  # exact duplicate features: only the id can order them
    ids = rng.permutation(10 * n)[:n].astype(np.int64)
    hamming = rng.integers(0, 65, n)
    return query, ids, feats, hamming


def test_hand_made_order_with_tie_broken_by_id() -> None:
    query = np.array([1.0, 0.0], dtype=np.float32)
    ids = np.array([40, 7, 12, 3], dtype=np.int64)
    # cos: 0 (orthogonal), 1 (same, unnormalised), -1 (opposite), 1 (same): ids 3 and 7 tie.
    feats = np.array([[0, 5], [3, 0], [-2, 0], [0.5, 0]], dtype=np.float32)
    hamming = np.array([1, 2, 3, 4])
    ranked = rerank(query, ids, feats, hamming, k=10)
    np.testing.assert_array_equal(ranked.ids, [3, 7, 40, 12])
    np.testing.assert_allclose(ranked.similarity, [1.0, 1.0, 0.5, 0.0], atol=1e-6)
    np.testing.assert_array_equal(ranked.hamming, [4, 2, 1, 3])
    np.testing.assert_array_equal(ranked.order, [3, 1, 0, 2])
    np.testing.assert_array_equal(ranked.score, ranked.similarity)


def test_hamming_weight_breaks_content_ties_toward_closer_codes() -> None:
    query = np.array([1.0, 0.0], dtype=np.float32)
    ids = np.array([3, 7, 9], dtype=np.int64)
    feats = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    hamming = np.array([10, 2, 0])
    ranked = rerank(query, ids, feats, hamming, k=3, hamming_weight=0.5, bits=64)
    np.testing.assert_array_equal(ranked.ids, [7, 3, 9])
    np.testing.assert_allclose(ranked.score, [1 - 0.5 * 2 / 64, 1 - 0.5 * 10 / 64, 0.5], atol=1e-6)


def test_weight_above_code_length_keeps_hamming_order_and_breaks_ties_by_content() -> None:
    # The "content tie-break" mode documented for ACIR_HAMMING_WEIGHT.
    query, ids, feats, hamming = _random_candidates(seed=4, n=400, d=16)
    ranked = rerank(query, ids, feats, hamming, k=400, hamming_weight=65.0, bits=64)
    assert np.all(np.diff(ranked.hamming) >= 0)
    same_code = np.diff(ranked.hamming) == 0
    assert np.all(np.diff(ranked.similarity)[same_code] <= 0)
    assert np.any(np.diff(ranked.similarity)[same_code] < 0)


def test_hamming_weight_needs_bits() -> None:
    with pytest.raises(ValueError, match="bits"):
        rerank(np.ones(2, np.float32), np.arange(2), np.ones((2, 2)), np.zeros(2, int), 1, 0.1)


@pytest.mark.parametrize("weight", [0.0, 0.3])
def test_same_result_whatever_candidate_order(weight: float) -> None:
    query, ids, feats, hamming = _random_candidates(seed=1, n=300, d=37)
    base = rerank(query, ids, feats, hamming, k=50, hamming_weight=weight, bits=64)
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(ids.shape[0])
        other = rerank(query, ids[perm], feats[perm], hamming[perm], 50, weight, bits=64)
        np.testing.assert_array_equal(other.ids, base.ids)
        np.testing.assert_array_equal(other.score, base.score)
        np.testing.assert_array_equal(perm[other.order], base.order)


def test_matches_full_sort_reference() -> None:
    query, ids, feats, hamming = _random_candidates(seed=2, n=200, d=16)
    ranked = rerank(query, ids, feats, hamming, k=25)
    f = feats.astype(np.float64)
    cos = f @ query / (np.linalg.norm(f, axis=1) * np.linalg.norm(query))
    sim = (cos + 1) / 2
    np.testing.assert_allclose(ranked.similarity, sim[ranked.order], atol=1e-5)
    assert np.all(np.diff(ranked.score) <= 0)
    # Within equal scores the ids increase; the best 25 are the 25 largest similarities.
    same = np.diff(ranked.score) == 0
    assert np.all(np.diff(ranked.ids)[same] > 0)
    assert ranked.similarity.min() >= np.sort(sim)[-25] - 1e-5


def test_k_clamped_and_similarity_in_unit_interval() -> None:
    query, ids, feats, hamming = _random_candidates(seed=3, n=12, d=8)
    ranked = rerank(query, ids, feats, hamming, k=100)
    assert ranked.ids.shape == (12,)
    assert ranked.similarity.min() >= 0.0 and ranked.similarity.max() <= 1.0


def test_zero_feature_gets_neutral_similarity() -> None:
    ranked = rerank(np.ones(4, np.float32), np.array([1]), np.zeros((1, 4)), np.array([0]), 1)
    np.testing.assert_allclose(ranked.similarity, [0.5])


def test_batch_equals_single_queries() -> None:
    rng = np.random.default_rng(4)
    queries = rng.standard_normal((3, 16)).astype(np.float32)
    feats = rng.standard_normal((3, 40, 16)).astype(np.float32)
    ids = np.stack([rng.permutation(100)[:40] for _ in range(3)]).astype(np.int64)
    hamming = rng.integers(0, 17, (3, 40))
    batch = rerank_batch(queries, ids, feats, hamming, 10, 0.2, bits=16)
    for row, got in enumerate(batch):
        single = rerank(queries[row], ids[row], feats[row], hamming[row], 10, 0.2, bits=16)
        np.testing.assert_array_equal(got.ids, single.ids)
        np.testing.assert_array_equal(got.score, single.score)


@pytest.mark.parametrize(
    ("ids", "hamming", "message"),
    [
        (np.array([1, 1, 2]), np.zeros(3, int), "unique"),
        (np.array([1, 2]), np.zeros(3, int), "candidate_ids"),
        (np.array([1, 2, 3]), np.zeros(3, float), "hamming"),
    ],
)
def test_rejects_bad_input(ids: np.ndarray, hamming: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rerank(np.ones(2, np.float32), ids, np.ones((3, 2), np.float32), hamming, 2)


def test_single_query_path_equals_batch_and_skipping_the_unique_check() -> None:
    query, ids, feats, hamming = _random_candidates(seed=5, n=120, d=24)
    single = rerank(query, ids, feats, hamming, 30, 0.4, bits=64)
    fast = rerank(query, ids, feats, hamming, 30, 0.4, bits=64, check_unique=False)
    batch = rerank_batch(query[None], ids[None], feats[None], hamming[None], 30, 0.4, bits=64)[0]
    for got in (fast, batch):
        np.testing.assert_array_equal(got.ids, single.ids)
        np.testing.assert_array_equal(got.score, single.score)
        np.testing.assert_array_equal(got.order, single.order)
    assert single.similarity.dtype == np.float32 and single.hamming.dtype == np.int32


def _prepared(
    query: np.ndarray, ids: np.ndarray, feats: np.ndarray, hamming: np.ndarray, k: int,
    weight: float, id_limit: int | None,
) -> tuple[np.ndarray, ...]:  # fmt: skip
    f32 = feats.astype(np.float32)
    divisors = similarity_divisors(f32)
    return rerank_prepared(query, ids, f32, divisors, hamming, k, weight, 64, id_limit=id_limit)


@pytest.mark.parametrize(("weight", "id_limit"), [(0.0, None), (0.0, 3000), (0.3, 3000)])
def test_prepared_path_equals_rerank_bit_for_bit(weight: float, id_limit: int | None) -> None:
    # Divisors computed once for all rows (as a store does on add) give the same similarities
    # as rerank's per-call norms of the gathered candidates, in every candidate order.
    query, ids, feats, hamming = _random_candidates(seed=6, n=300, d=37)
    base = rerank(query, ids, feats, hamming, 40, weight, bits=64)
    for seed in range(4):
        perm = np.random.default_rng(seed).permutation(ids.shape[0])
        got = _prepared(query, ids[perm], feats[perm], hamming[perm], 40, weight, id_limit)
        np.testing.assert_array_equal(got[0], base.ids)
        np.testing.assert_array_equal(got[1], base.hamming)
        np.testing.assert_array_equal(got[2], base.similarity)
        assert got[2].dtype == np.float32


def test_one_key_order_breaks_exact_ties_by_id_like_lexsort() -> None:
    # Many exact similarity ties (including exactly 0 and 1) and ids up to just below 2**32.
    rng = np.random.default_rng(7)
    query = np.array([1.0, 0.0, 0.0], np.float32)
    pool = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [1, 1, 0], [2, 0, 0]], np.float32)
    feats = pool[rng.integers(0, pool.shape[0], 200)]
    ids = np.concatenate([rng.permutation(150), (1 << 32) - 1 - np.arange(50)]).astype(np.int64)
    hamming = rng.integers(0, 65, 200)
    base = rerank(query, ids, feats, hamming, 200)
    got = _prepared(query, ids, feats, hamming, 200, 0.0, 1 << 32)
    np.testing.assert_array_equal(got[0], base.ids)
    np.testing.assert_array_equal(got[2], base.similarity)
    assert got[2][0] == 1.0 and got[2][-1] == 0.0


def test_similarity_is_the_clipped_half_cosine_bit_for_bit() -> None:
    # cos / 2 + 1 / 2 with the norm doubled equals (clip(cos, -1, 1) + 1) * 0.5 exactly.
    rng = np.random.default_rng(8)
    for scale in (1e-20, 1e-3, 1.0, 1e3, 1e18):
        query = (rng.standard_normal(24) * scale).astype(np.float32)
        feats = (rng.standard_normal((500, 24)) * scale).astype(np.float32)
        feats[:5] = query * np.float32(3.0)  # cos rounds to about +-1: the clip matters
        feats[5:10] = -query
        ids, hamming = np.arange(500), np.zeros(500, int)
        unit = query / np.maximum(np.sqrt(np.vecdot(query, query)), np.float32(1e-12))
        norms = np.maximum(np.sqrt(np.vecdot(feats, feats)), np.float32(1e-12))
        cos = np.vecdot(feats, unit) / norms
        want = (np.clip(cos, -1.0, 1.0) + np.float32(1.0)) * np.float32(0.5)
        ranked = rerank(query, ids, feats, hamming, 500)
        np.testing.assert_array_equal(ranked.similarity, want[ranked.order])
        prepared = _prepared(query, ids, feats, hamming, 500, 0.0, 500)
        np.testing.assert_array_equal(prepared[2], ranked.similarity)


def test_non_finite_feature_gets_similarity_zero_on_both_paths() -> None:
    query = np.array([1.0, 2.0], np.float32)
    feats = np.array([[np.inf, 1.0], [np.nan, 0.0], [1.0, 2.0], [-1.0, -2.0]], np.float32)
    ids, hamming = np.array([4, 3, 2, 1]), np.zeros(4, int)
    with np.errstate(invalid="ignore"):
        ranked = rerank(query, ids, feats, hamming, 4)
        got = [_prepared(query, ids, feats, hamming, 4, 0.0, limit) for limit in (None, 5)]
    np.testing.assert_array_equal(ranked.ids, [2, 1, 3, 4])
    np.testing.assert_array_equal(ranked.similarity, [1.0, 0.0, 0.0, 0.0])
    for prepared in got:
        np.testing.assert_array_equal(prepared[0], ranked.ids)
        np.testing.assert_array_equal(prepared[2], ranked.similarity)


def test_duplicate_rows_score_identically_at_every_position_on_the_prepared_path() -> None:
    rng = np.random.default_rng(9)
    query = rng.standard_normal(128).astype(np.float32)
    row = rng.standard_normal(128).astype(np.float16).astype(np.float32)
    feats = np.repeat(row[None], 101, axis=0)
    ids = rng.permutation(1000)[:101].astype(np.int64)
    got = _prepared(query, ids, feats, np.zeros(101, int), 101, 0.0, 1000)
    assert np.unique(got[2]).shape == (1,)
    np.testing.assert_array_equal(got[0], np.sort(ids))
