"""Evaluation pieces of the retrieval benchmark (numpy; no training here).

Content-guided ranking is measured through the service's own code: the FAISS ``BinaryIndex`` for
candidates (ordered by (Hamming, id)) and ``index.rerank`` for the re-ordering, and, for full
rankings (mAP@all), ``app.evaluation.content_guided_ranking`` (the same rerank on the top
candidates, the rest in (Hamming, index) order).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image
from scipy.stats import rankdata, wilcoxon

from app.evaluation import content_guided_ranking
from index.binary_index import BinaryIndex
from index.codes import pack_bits
from index.rerank import rerank_batch
from models.metrics import average_precisions, hamming_ranking, retrieval_metrics


def evaluate_ranking(
    ranking: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray
) -> tuple[dict[str, float], np.ndarray]:
    """Metrics of a full ranking and the per-query AP@100 (for the paired test)."""
    metrics = retrieval_metrics(ranking, query_labels, db_labels)
    return metrics, average_precisions(ranking, query_labels, db_labels, 100)


def hashing_rankings(
    q_bits: np.ndarray,
    db_bits: np.ndarray,
    q_feats: np.ndarray | None = None,
    db_feats: np.ndarray | None = None,
    candidates: int = 1000,
    outputs: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Plain Hamming ranking, plus, when features are given, the content-guided one (candidates
    ordered by content similarity) and ``content_ties`` (Hamming first, content similarity
    breaking its ties: the service with ``hamming_weight`` above the code length); with the
    continuous hash outputs (query, db), ``hash_output``: the candidates ordered by their cosine
    instead of the blended feature's (bench/rerank_study.py)."""
    out = {"hamming": hamming_ranking(q_bits, db_bits)}
    if q_feats is not None and db_feats is not None:
        out["content_guided"] = content_guided_ranking(
            q_bits, db_bits, q_feats, db_feats, candidates
        )
        out["content_ties"] = content_guided_ranking(
            q_bits, db_bits, q_feats, db_feats, candidates, hamming_weight=q_bits.shape[1] + 1.0
        )
    if outputs is not None:
        out["hash_output"] = content_guided_ranking(q_bits, db_bits, *outputs, candidates)
    return out


def paired_wilcoxon(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
    """Two-sided paired Wilcoxon signed-rank test on per-query AP (zero differences dropped),
    with the matched-pairs rank-biserial correlation: its sign says which side the ranks favour
    (the two-sided statistic alone does not), and it can disagree with the mean difference."""
    diff = np.asarray(ours, np.float64) - np.asarray(theirs, np.float64)
    nonzero = int(np.count_nonzero(diff))
    if nonzero == 0:
        return {
            "statistic": 0.0,
            "p_value": 1.0,
            "n_nonzero": 0,
            "mean_diff": 0.0,
            "rank_biserial": 0.0,
        }
    result = wilcoxon(ours, theirs, zero_method="wilcox", alternative="two-sided")
    return {
        "statistic": float(result.statistic),
        "p_value": float(result.pvalue),
        "n_nonzero": nonzero,
        "mean_diff": float(diff.mean()),
        "rank_biserial": rank_biserial(diff),
    }


def rank_biserial(diff: np.ndarray) -> float:
    """(R+ - R-) / (R+ + R-) over the ranks of |diff| (zeros dropped, ties averaged): +1 when
    every nonzero difference is positive, -1 when every one is negative."""
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        return 0.0
    ranks = rankdata(np.abs(nonzero))
    return float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())


def service_top_k(
    q_bits: np.ndarray,
    q_feats: np.ndarray,
    index: BinaryIndex,
    feats_by_id: np.ndarray,
    k: int,
    candidate_multiplier: int | None,
) -> np.ndarray:
    """Top-k ids [Q, k] as the service returns them; ``candidate_multiplier=None``: Hamming only."""
    q_codes = pack_bits(q_bits)
    if candidate_multiplier is None:
        return index.search(q_codes, k)[1]
    dist, ids = index.search(q_codes, k * candidate_multiplier)
    ranked = rerank_batch(q_feats, ids, feats_by_id[ids], dist.astype(np.int64), k)
    return np.stack([r.ids for r in ranked])


def determinism_check(
    q_bits: np.ndarray,
    q_feats: np.ndarray,
    db_bits: np.ndarray,
    db_feats: np.ndarray,
    k: int = 10,
    candidate_multiplier: int = 10,
    seed: int = 0,
) -> dict[str, int]:
    """Count queries whose top-k list changes when the database is inserted in shuffled order.

    Ids are the database positions, fixed per image. Three rankings are compared: the service
    path with re-ranking and the service Hamming search (both ordered with the id as final key,
    so 0 is required), and a Hamming sort that breaks ties by insertion position (what an
    unsorted index returns; shown as the contrast).
    """
    n = db_bits.shape[0]
    ids = np.arange(n, dtype=np.int64)
    perm = np.random.default_rng(seed).permutation(n)
    plain = BinaryIndex.from_codes(q_bits.shape[1], ids, pack_bits(db_bits))
    shuffled = BinaryIndex.from_codes(q_bits.shape[1], ids[perm], pack_bits(db_bits[perm]))
    counts: dict[str, int] = {"queries": int(q_bits.shape[0]), "k": k}
    for name, mult in (("content_guided", candidate_multiplier), ("service_hamming", None)):
        a = service_top_k(q_bits, q_feats, plain, db_feats, k, mult)
        b = service_top_k(q_bits, q_feats, shuffled, db_feats, k, mult)
        counts[f"{name}_differing"] = int((a != b).any(axis=1).sum())
    by_position = hamming_ranking(q_bits, db_bits)[:, :k]
    by_shuffled_position = perm[hamming_ranking(q_bits, db_bits[perm])[:, :k]]
    counts["insertion_order_hamming_differing"] = int(
        (by_position != by_shuffled_position).any(axis=1).sum()
    )
    return counts


def add_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """uint8 images plus Gaussian noise of standard deviation ``sigma`` grey levels."""
    rng = np.random.default_rng(seed)
    noisy = images.astype(np.float32) + rng.normal(0.0, sigma, images.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg_reencode(images: np.ndarray, quality: int) -> np.ndarray:
    """Each uint8 grayscale image saved as JPEG at ``quality`` and decoded again."""
    out = np.empty_like(images)
    for i, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        out[i] = np.asarray(Image.open(buffer).convert("L"))
    return out


def top_k_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean fraction of ids shared by paired top-k lists (order ignored)."""
    shared = [len(np.intersect1d(x, y)) / a.shape[1] for x, y in zip(a, b, strict=True)]
    return float(np.mean(shared))


def robustness(
    clean: tuple[np.ndarray, np.ndarray],
    perturbed: dict[str, tuple[np.ndarray, np.ndarray]],
    db_bits: np.ndarray,
    db_feats: np.ndarray,
    k: int = 10,
    candidate_multiplier: int = 10,
) -> dict[str, Any]:
    """Top-k overlap between clean and perturbed queries, with and without re-ranking.

    ``clean`` and each ``perturbed`` entry are (query bits, query features).
    """
    index = BinaryIndex.from_codes(db_bits.shape[1], np.arange(len(db_bits)), pack_bits(db_bits))
    out: dict[str, Any] = {"k": k}
    for mode, mult in (("content_guided", candidate_multiplier), ("hamming", None)):
        ref = service_top_k(clean[0], clean[1], index, db_feats, k, mult)
        out[mode] = {
            name: top_k_overlap(ref, service_top_k(bits, feats, index, db_feats, k, mult))
            for name, (bits, feats) in perturbed.items()
        }
    return out
