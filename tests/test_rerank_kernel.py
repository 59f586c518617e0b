"""The compiled re-ranking kernel against the numpy reference, and its order guarantees."""

from __future__ import annotations

import numpy as np

from index.rerank import rerank, similarity_divisors
from index.rerank_kernel import rank_rows


def _rank(feats: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> tuple[list, list]:
    """rank_rows over candidates stored one per matrix row, in candidate order."""
    matrix = np.ascontiguousarray(feats, np.float32)
    rows = np.arange(len(ids), dtype=np.int64)
    positions, similarity = rank_rows(matrix, similarity_divisors(matrix), rows, ids, query, k)
    return ids[positions].tolist(), similarity.tolist()


def test_kernel_ranks_like_the_numpy_reference() -> None:
    rng = np.random.default_rng(0)
    for n, d, k in [(100, 128, 10), (7, 16, 20), (250, 33, 250)]:
        feats = rng.normal(size=(n, d)).astype(np.float32)
        ids = rng.permutation(10 * n)[:n].astype(np.int64)
        query = rng.normal(size=d).astype(np.float32)
        got_ids, got_sim = _rank(feats, ids, query, k)
        want = rerank(query, ids, feats, np.zeros(n, np.int32), k)
        assert got_ids == want.ids.tolist()
        np.testing.assert_allclose(got_sim, want.similarity, rtol=0, atol=1e-6)


def test_duplicate_rows_score_identically_at_every_position_and_ties_go_by_id() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(40, 24)).astype(np.float32)
    feats = np.concatenate([base, base[:1].repeat(9, axis=0)])  # 10 copies of row 0
    ids = rng.permutation(1000)[:49].astype(np.int64)
    query = base[0] + 0.1 * rng.normal(size=24).astype(np.float32)
    first_ids, first_sim = _rank(feats, ids, query, 49)
    copies = {int(i) for i in ids[[0, *range(40, 49)]]}
    tied = [s for i, s in zip(first_ids, first_sim, strict=True) if i in copies]
    assert len(set(tied)) == 1  # bit-identical whatever their position
    assert [i for i in first_ids if i in copies] == sorted(copies)  # ties broken by id
    for seed in range(5):  # any arrival order gives the same list
        order = np.random.default_rng(seed).permutation(49)
        assert _rank(feats[order], ids[order], query, 49) == (first_ids, first_sim)


def test_missing_rows_are_skipped_and_degenerate_features_score_zero() -> None:
    matrix = np.array([[1, 0], [0, 1], [np.nan, 1], [-1, 0]], np.float32)
    divisors = similarity_divisors(matrix)
    ids = np.array([10, 11, 12, 13, 14], np.int64)
    rows = np.array([0, -1, 2, 3, 1], np.int64)  # id 11 has no stored feature
    positions, similarity = rank_rows(matrix, divisors, rows, ids, np.array([1, 0], np.float32), 9)
    assert ids[positions].tolist() == [10, 14, 12, 13]
    assert similarity.tolist() == [1.0, 0.5, 0.0, 0.0]
