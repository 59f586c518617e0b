"""Retrieval metrics with deterministic tie-breaking (method.md §6).

Rankings are arrays of database indices, one row per query. Ties in Hamming distance (very
common with short codes) are broken by database index, so the same codes always give the same
ranking and no method is flattered or penalised by an arbitrary sort.
"""

from __future__ import annotations

import numpy as np


def _as_bits(bits: np.ndarray) -> np.ndarray:
    if bits.ndim != 2:
        raise ValueError(f"expected a 2-D bit matrix, got shape {bits.shape}")
    return np.asarray(bits, dtype=bool)


def hamming_distance_matrix(query_bits: np.ndarray, db_bits: np.ndarray) -> np.ndarray:
    """Hamming distances [Q, N] between boolean code matrices."""
    q = _as_bits(query_bits).astype(np.float32)
    d = _as_bits(db_bits).astype(np.float32)
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"bit lengths differ: {q.shape[1]} vs {d.shape[1]}")
    agreements = q @ d.T + (1.0 - q) @ (1.0 - d).T
    return np.rint(q.shape[1] - agreements).astype(np.int64)


def hamming_ranking(query_bits: np.ndarray, db_bits: np.ndarray) -> np.ndarray:
    """Database indices per query, ordered by (Hamming distance, database index)."""
    distances = hamming_distance_matrix(query_bits, db_bits)
    return np.argsort(distances, axis=1, kind="stable")


def cosine_ranking(query_features: np.ndarray, db_features: np.ndarray) -> np.ndarray:
    """Database indices per query, ordered by (-cosine similarity, database index)."""
    q = _normalise(np.asarray(query_features, dtype=np.float32))
    d = _normalise(np.asarray(db_features, dtype=np.float32))
    return np.argsort(-(q @ d.T), axis=1, kind="stable")


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def average_precisions(
    ranking: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray, k: int | None
) -> np.ndarray:
    """Per-query AP over the top k (k=None: the whole ranking).

    AP@k = mean of precision@i over the relevant positions i <= k; a query with no relevant item
    in its top k scores 0 (the hashing-literature convention).
    """
    top = ranking if k is None else ranking[:, :k]
    relevant = db_labels[top] == np.asarray(query_labels)[:, None]
    hits = np.cumsum(relevant, axis=1)
    positions = np.arange(1, top.shape[1] + 1)
    precision_sum = np.sum((hits / positions) * relevant, axis=1)
    n_relevant = relevant.sum(axis=1)
    return np.where(n_relevant > 0, precision_sum / np.maximum(n_relevant, 1), 0.0)


def precision_at_k(
    ranking: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray, k: int
) -> float:
    relevant = db_labels[ranking[:, :k]] == np.asarray(query_labels)[:, None]
    return float(relevant.mean())


def retrieval_metrics(
    ranking: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray
) -> dict[str, float]:
    """mAP@100, mAP@all and precision@10 of a ranking."""
    return {
        "map@100": float(average_precisions(ranking, query_labels, db_labels, 100).mean()),
        "map@all": float(average_precisions(ranking, query_labels, db_labels, None).mean()),
        "p@10": precision_at_k(ranking, query_labels, db_labels, 10),
    }
