"""Content-guided re-ranking of Hamming candidates (method.md §5).

score = similarity − hamming_weight · hamming / bits, with similarity = (cos + 1) / 2 ∈ [0, 1]
computed on L2-normalised features. Candidates are ordered by (−score, id): the id is the final,
unique key, so the list is the same whatever order the candidates arrive in. Each candidate's score
is computed by the same per-row `vecdot` reduction, so it does not depend on the candidate's
position either (a BLAS matrix-vector product treats tail rows differently and does not
guarantee that, measured; the tests check duplicate rows score identically at every position).

`rerank_prepared` is the service's per-request path: the same scores from candidate norms a
store computed once (`similarity_divisors`), without input checks or a result object, and with
one int64 sort key instead of np.lexsort where the ids allow it.
"""

from __future__ import annotations

import math
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
    check_unique: bool = True,
) -> RankedList:
    """Re-rank n candidates of one query by content similarity; keep the best k' = min(k, n).

    `bits` (the code length) normalises the Hamming term and is required when hamming_weight != 0.
    `check_unique=False` skips the check that ids are unique, for callers that guarantee it (the
    index never returns an id twice). Same result as `rerank_batch` on a batch of one, without
    the batch bookkeeping (this is the per-request path of the service).
    """
    query = np.asarray(query_feature)
    if query.ndim != 1:
        raise ValueError(f"query_feature must be 1-D [d], got shape {query.shape}")
    ids, feats, ham = (np.asarray(a) for a in (candidate_ids, candidate_features, hamming))
    if feats.ndim != 2:
        raise ValueError(f"candidate_features must be 2-D [n, d], got shape {feats.shape}")
    _check_inputs(query[None, :], ids[None, :], feats[None, :, :], ham[None, :], k, check_unique)
    similarity = _similarity(query, feats)
    score = _score(similarity, ham, hamming_weight, bits)
    ids = ids.astype(np.int64, copy=False)
    order = np.lexsort((ids, -score))[:k]
    return RankedList(ids[order], similarity[order], ham[order].astype(np.int32), score[order],
                      order.astype(np.int64, copy=False))  # fmt: skip


def rerank_prepared(
    query_feature: np.ndarray,
    candidate_ids: np.ndarray,
    candidate_features: np.ndarray,
    candidate_divisors: np.ndarray,
    hamming: np.ndarray,
    k: int,
    hamming_weight: float = 0.0,
    bits: int | None = None,
    *,
    id_limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lean `rerank` for the service's single query: (ids, hamming, similarity) of the best k'.

    The caller guarantees what `rerank` checks: query float32 [d], n >= 1 unique int64 ids,
    float32 [n, d] features with their `similarity_divisors` precomputed (a store computes them
    once, on add), integer hamming [n], k >= 1. `id_limit`, when given, bounds every candidate id
    (0 <= id < id_limit); a small one lets one sort on a single int64 key replace np.lexsort.
    Same ranking and bit-identical similarities as `rerank` on the same inputs, with fewer numpy
    calls and no result object.
    """
    half_cos = np.vecdot(candidate_features, _unit_query(query_feature))
    half_cos /= candidate_divisors
    similarity = _half_cos_to_similarity(half_cos)
    if not hamming_weight and id_limit is not None and id_limit <= _KEY_ID_LIMIT:
        order = _order_by_one_key(similarity, candidate_ids)[:k]
    else:
        score = _score(similarity, hamming, hamming_weight, bits)
        order = np.lexsort((candidate_ids, -score))[:k]
    return candidate_ids[order], hamming[order], similarity[order]


# Ids below this fit under a similarity's bit pattern in one int64 key (`_order_by_one_key`).
_KEY_ID_LIMIT = 1 << 32


def _order_by_one_key(similarity: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Order by (-similarity, id) with one argsort, for similarities in [0, 1] and ids in
    [0, 2**32): a float32 >= +0 orders like its int32 bit pattern, so id - (bits << 32) is
    ascending in exactly that order (the similarity is clipped, never -0 or NaN)."""
    key = np.left_shift(similarity.view(np.int32), 32, dtype=np.int64)
    np.subtract(ids, key, out=key)
    return np.argsort(key)


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
    similarity = _similarity(query_features, candidate_features)
    score = _score(similarity, hamming, hamming_weight, bits)
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


def _score(
    similarity: np.ndarray, hamming: np.ndarray, hamming_weight: float, bits: int | None
) -> np.ndarray:
    if not hamming_weight:
        return similarity
    if not bits:
        raise ValueError("bits (the code length) is required when hamming_weight != 0")
    return similarity - np.float32(hamming_weight / bits) * hamming.astype(np.float32)


def _similarity(query_features: np.ndarray, candidate_features: np.ndarray) -> np.ndarray:
    """(cos + 1) / 2 as float32 [..., n] for queries [..., d] and candidates [..., n, d].

    Features are normalised here whatever the caller did.
    """
    query = query_features.astype(np.float32)
    query /= _norms(query)[..., None]
    feats = candidate_features.astype(np.float32, copy=False)
    half_cos = np.vecdot(feats, query[..., None, :])
    half_cos /= similarity_divisors(feats)
    return _half_cos_to_similarity(half_cos)


def similarity_divisors(features: np.ndarray) -> np.ndarray:
    """Twice the L2 norm of each float32 row [..., n, d] (norm floored at a tiny epsilon).

    A row's dot product with the unit query divided by this is cos / 2, and similarity =
    cos / 2 + 1 / 2 (one add; scaling by 2 is exact, so it equals (cos + 1) / 2 bit for bit).
    Per-row `vecdot`, so a row's divisor is the same whether computed alone, in a batch or in a
    gathered candidate matrix: a store may compute it once, on add (see `rerank_prepared`).
    """
    divisors = _norms(features)
    divisors *= 2.0
    return divisors


def _norms(features: np.ndarray) -> np.ndarray:
    return np.maximum(np.sqrt(np.vecdot(features, features)), np.float32(_EPS))


def _unit_query(query: np.ndarray) -> np.ndarray:
    """`query / _norms(query)` for one float32 [d] query, with scalar math instead of numpy
    calls: a float32 square root taken in float64 and rounded back is the float32 square root
    (double rounding is harmless for sqrt when the wide format has >= 2p + 2 bits)."""
    norm = np.float32(math.sqrt(np.vecdot(query, query)))
    return query / max(norm, np.float32(_EPS))


def _half_cos_to_similarity(half_cos: np.ndarray) -> np.ndarray:
    # Clip cos / 2 to [-1/2, 1/2], then + 1/2. np.minimum/np.fmax rather than np.clip, whose
    # Python wrapper costs ~1 µs more; fmax maps NaN (a degenerate inf feature) to similarity 0.
    np.minimum(half_cos, 0.5, out=half_cos)
    np.fmax(half_cos, -0.5, out=half_cos)
    half_cos += 0.5
    return half_cos


def _check_inputs(
    query_features: np.ndarray,
    candidate_ids: np.ndarray,
    candidate_features: np.ndarray,
    hamming: np.ndarray,
    k: int,
    check_unique: bool = True,
) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if query_features.ndim != 2 or candidate_features.ndim != 3:
        raise ValueError("expected query features [Q,d] and candidate features [Q,n,d]")
    n_query, n_cand, dim = candidate_features.shape
    if query_features.shape != (n_query, dim):
        raise ValueError(f"query features {query_features.shape} do not match {(n_query, dim)}")
    for name, arr in (("candidate_ids", candidate_ids), ("hamming", hamming)):
        if arr.shape != (n_query, n_cand) or arr.dtype.kind not in "iu":
            raise ValueError(f"{name} must be an integer array of shape {(n_query, n_cand)}")
    if (
        check_unique
        and n_cand > 1
        and (np.diff(np.sort(candidate_ids, axis=-1), axis=-1) == 0).any()
    ):
        raise ValueError("candidate ids must be unique per query (the id breaks ties)")
