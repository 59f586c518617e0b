"""Content-guided re-ranking of Hamming candidates (method.md §5).

score = similarity − hamming_weight · hamming / bits, with similarity = (cos + 1) / 2 ∈ [0, 1]
computed on L2-normalised features. Candidates are ordered by (−score, id): the id is the final,
unique key, so the list is the same whatever order the candidates arrive in. Each candidate's score
is computed by the same per-row `einsum` reduction, so it does not depend on the candidate's
position either (a BLAS matrix-vector product, which may treat tail rows differently, would not
guarantee that; the tests check duplicate rows score identically at every position).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = 1e-12


@dataclass(frozen=True)
class RankedList:
    """Top-k re-ranked candidates, best first."""

    ids: np.ndarray  # int64 [k']
    similarity: np.ndarray  # float32 [k'], (cos + 1) / 2 in [0, 1]
    hamming: np.ndarray  # int32 [k'], Hamming distance to the query code
    score: np.ndarray  # float32 [k'], the ranking score (== similarity when hamming_weight == 0)
    order: np.ndarray  # int64 [k'], positions of these candidates in the input arrays


def rerank(
    query_feature: np.ndarray,
    candidate_ids: np.ndarray,
    candidate_features: np.ndarray,
    hamming: np.ndarray,
    k: int,
    hamming_weight: float = 0.0,
    *,
    bits: int | None = None,
) -> RankedList:
    """Re-rank n candidates of one query by content similarity; keep the best k' = min(k, n).

    `bits` (the code length) normalises the Hamming term and is required when hamming_weight != 0.
    """
    query = np.asarray(query_feature)
    if query.ndim != 1:
        raise ValueError(f"query_feature must be 1-D [d], got shape {query.shape}")
    ranked = rerank_batch(
        query[None, :],
        np.asarray(candidate_ids)[None, :],
        np.asarray(candidate_features)[None, :, :],
        np.asarray(hamming)[None, :],
        k,
        hamming_weight,
        bits=bits,
    )
    return ranked[0]


def rerank_batch(
    query_features: np.ndarray,
    candidate_ids: np.ndarray,
    candidate_features: np.ndarray,
    hamming: np.ndarray,
    k: int,
    hamming_weight: float = 0.0,
    *,
    bits: int | None = None,
) -> list[RankedList]:
    """Vectorised `rerank` for Q queries of n candidates: shapes [Q,d], [Q,n], [Q,n,d], [Q,n]."""
    _check_inputs(query_features, candidate_ids, candidate_features, hamming, k)
    if hamming_weight and not bits:
        raise ValueError("bits (the code length) is required when hamming_weight != 0")
    similarity = _similarity(query_features, candidate_features)
    score = similarity
    if hamming_weight:
        assert bits is not None
        score = similarity - np.float32(hamming_weight / bits) * hamming.astype(np.float32)
    ids = candidate_ids.astype(np.int64, copy=False)
    order = np.lexsort((ids, -score), axis=-1)[:, :k]
    return [
        RankedList(
            ids=ids[row, idx],
            similarity=similarity[row, idx],
            hamming=hamming[row, idx].astype(np.int32),
            score=score[row, idx],
            order=idx.astype(np.int64),
        )
        for row, idx in enumerate(order)
    ]


def _similarity(query_features: np.ndarray, candidate_features: np.ndarray) -> np.ndarray:
    """(cos + 1) / 2 as float32 [Q, n]; features are normalised here whatever the caller did."""
    query = query_features.astype(np.float32)
    query /= np.maximum(np.sqrt(np.einsum("qd,qd->q", query, query))[:, None], _EPS)
    feats = candidate_features.astype(np.float32, copy=False)
    norms = np.sqrt(np.einsum("qnd,qnd->qn", feats, feats))
    cos = np.einsum("qnd,qd->qn", feats, query) / np.maximum(norms, _EPS)
    return ((np.clip(cos, -1.0, 1.0) + 1.0) / 2.0).astype(np.float32)


def _check_inputs(
    query_features: np.ndarray,
    candidate_ids: np.ndarray,
    candidate_features: np.ndarray,
    hamming: np.ndarray,
    k: int,
) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if query_features.ndim != 2 or candidate_features.ndim != 3:
        raise ValueError("expected query features [Q,d] and candidate features [Q,n,d]")
    n_query, n_cand, dim = candidate_features.shape
    if query_features.shape != (n_query, dim):
        raise ValueError(f"query features {query_features.shape} do not match {(n_query, dim)}")
    for name, arr in (("candidate_ids", candidate_ids), ("hamming", hamming)):
        if arr.shape != (n_query, n_cand) or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be an integer array of shape {(n_query, n_cand)}")
    if n_cand > 1 and (np.diff(np.sort(candidate_ids, axis=-1), axis=-1) == 0).any():
        raise ValueError("candidate ids must be unique per query (the id breaks ties)")
