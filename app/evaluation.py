"""`acir eval`: retrieval quality of a checkpoint, plain Hamming and with content-guided ranking.

Content-guided ranking here is the service's own path (index.rerank): the `candidates` nearest
codes by (Hamming, id) are re-ordered by blended-feature similarity; the rest keep Hamming order.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from index.rerank import rerank_batch
from models.checkpoint import load_checkpoint
from models.metrics import hamming_distance_matrix, retrieval_metrics
from models.pipeline import evaluate_checkpoint


def content_guided_ranking(
    query_bits: np.ndarray,
    db_bits: np.ndarray,
    query_features: np.ndarray,
    db_features: np.ndarray,
    candidates: int,
    hamming_weight: float = 0.0,
) -> np.ndarray:
    """Full rankings [Q, N]: re-ranked top `candidates`, then the remainder by (Hamming, index).

    `hamming_weight` is the service setting of the same name; above the code length it makes the
    order (Hamming, content, id): content similarity only breaks Hamming ties.
    """
    distances = hamming_distance_matrix(query_bits, db_bits)
    by_hamming = np.argsort(distances, axis=1, kind="stable")
    n_cand = min(candidates, db_bits.shape[0])
    head = by_hamming[:, :n_cand]
    ranked = rerank_batch(
        query_features,
        head,
        db_features[head],
        np.take_along_axis(distances, head, axis=1),
        k=n_cand,
        hamming_weight=hamming_weight,
        bits=query_bits.shape[1],
    )
    reordered = np.stack([r.ids for r in ranked])
    return np.concatenate([reordered, by_hamming[:, n_cand:]], axis=1)


def evaluate_retrieval(checkpoint: Path, data_dir: Path, candidates: int = 100) -> dict[str, Any]:
    """Metrics JSON for `acir eval` (query split against the db split)."""
    started = time.perf_counter()
    ckpt = load_checkpoint(checkpoint)
    res = evaluate_checkpoint(ckpt, data_dir)
    reranked = content_guided_ranking(
        res["query_bits"], res["db_bits"], res["query_features"], res["db_features"], candidates
    )
    return {
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": ckpt.sha256,
        "data": str(data_dir),
        "bits": res["bits"],
        "n_queries": res["n_queries"],
        "n_database": res["n_database"],
        "hamming": res["metrics"],
        "content_guided": {
            "candidates": candidates,
            **retrieval_metrics(reranked, res["query_labels"], res["db_labels"]),
        },
        "seconds": round(time.perf_counter() - started, 2),
    }
