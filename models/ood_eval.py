"""OOD evaluation: each detector on far / near / macaque / adversarial sets and benign changes.

In-distribution is the query split. Each detector is run at its operating threshold: the
checkpoint's shipped threshold for the shipped detector, and for the others a threshold calibrated
the same way (validation split, the checkpoint's target false-rejection rate). The gate rejects an
image when ``score > threshold``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from models.adversarial import ATTACKS, EPSILONS, attack, code_flip_rate
from models.checkpoint import ACIRCheckpoint
from models.data.manifest import load_split
from models.data.ood_sets import BENIGN_KINDS, benign_perturbations, load_ood_sets
from models.ood import (
    DETECTORS,
    STATS_VERSION,
    OODInputs,
    OODState,
    calibrate_on_sets,
    check_detector,
    collect_inputs,
    scores_from_inputs,
)
from models.pipeline import CALIBRATION_SPLITS, load_training_data, ood_state_for
from models.preprocess import to_model_batch

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- metrics


def auroc(in_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    """P(OOD score > in-distribution score), ties counting one half (Mann–Whitney, numpy only)."""
    a = np.asarray(in_scores, dtype=np.float64).ravel()
    b = np.asarray(ood_scores, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("auroc needs at least one in-distribution and one OOD score")
    values = np.concatenate([a, b])
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.arange(1, values.size + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inverse, weights=ranks) / counts)[inverse]  # average rank within ties
    ood_rank_sum = ranks[a.size :].sum()
    return float((ood_rank_sum - b.size * (b.size + 1) / 2) / (a.size * b.size))


def fpr_at_tpr(in_scores: np.ndarray, ood_scores: np.ndarray, tpr: float = 0.95) -> float:
    """Share of in-distribution scores flagged at the highest threshold t that flags (score ≥ t)
    at least ``tpr`` of the OOD scores."""
    a = np.asarray(in_scores, dtype=np.float64).ravel()
    b = np.sort(np.asarray(ood_scores, dtype=np.float64).ravel())[::-1]
    if a.size == 0 or b.size == 0:
        raise ValueError("fpr_at_tpr needs at least one in-distribution and one OOD score")
    needed = max(1, math.ceil(tpr * b.size - 1e-9))
    return float((a >= b[needed - 1]).mean())


def rejection_rate(scores: np.ndarray, threshold: float) -> float:
    return float((np.asarray(scores) > threshold).mean())


# ---------------------------------------------------------------- inputs


def _subsample(count: int, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))


def _inputs(ckpt: ACIRCheckpoint, batch: Tensor, batch_size: int = 256) -> OODInputs:
    return collect_inputs(ckpt.network, ckpt.decoder, batch, batch_size)


def _arrays_inputs(ckpt: ACIRCheckpoint, arrays: Sequence[np.ndarray]) -> OODInputs:
    return _inputs(ckpt, to_model_batch(list(arrays), ckpt.preprocess))


def split_batch(
    ckpt: ACIRCheckpoint, data_dir: Path | str, split: str, limit: int | None, seed: int
) -> tuple[Tensor, np.ndarray]:
    """Preprocessed images (seeded subsample of at most ``limit``) and labels of one split."""
    data = load_split(data_dir, split)
    pick = _subsample(len(data.images), limit, seed)
    return to_model_batch(list(data.images[pick]), ckpt.preprocess), np.asarray(data.labels)[pick]


def refit_ood(
    ckpt: ACIRCheckpoint, data_dir: Path | str, detector: str, target_fpr: float = 0.05
) -> OODState:
    """A fresh OOD state for ``ckpt`` from the data set: the same fit as `acir train`."""
    data = load_training_data(Path(data_dir), ckpt.preprocess)
    return ood_state_for(ckpt, data, detector, target_fpr)


def _has_all_stats(state: OODState) -> bool:
    keys = ("maha_means", "knn_bank", "combined_members", "stats_version")
    return (
        all(k in state.stats for k in keys) and int(state.stats["stats_version"]) == STATS_VERSION
    )


# ---------------------------------------------------------------- sets


def adversarial_inputs(
    ckpt: ACIRCheckpoint, clean: Tensor, epsilons: Sequence[float], seed: int
) -> tuple[dict[str, OODInputs], dict[str, float]]:
    """Detector inputs and bit-flip rates of every attack × budget on the clean batch."""
    inputs, flips = {}, {}
    for method in ATTACKS:
        for eps in epsilons:
            name = f"{method}@{round(eps * 255)}/255"
            perturbed = attack(ckpt.network, clean, method, eps, seed=seed)
            inputs[name], flips[name] = (
                _inputs(ckpt, perturbed),
                code_flip_rate(ckpt.network, clean, perturbed),
            )
            logger.info("%s: %.3f of bits flipped", name, flips[name])
    return inputs, flips


def evaluation_inputs(
    ckpt: ACIRCheckpoint,
    data_dir: Path | str,
    max_per_set: int | None,
    attack_count: int,
    epsilons: Sequence[float],
    seed: int,
) -> tuple[dict[str, OODInputs], dict[str, OODInputs], dict[str, float]]:
    """(in-distribution-like sets, OOD sets, adversarial flip rates)."""
    query = load_split(data_dir, "query")
    arrays = [query.images[i] for i in _subsample(len(query.images), max_per_set, seed)]
    with tqdm(total=len(BENIGN_KINDS) + 3, desc="eval-ood sets") as bar:
        in_sets = {"query": _arrays_inputs(ckpt, arrays)}
        for kind in BENIGN_KINDS:
            in_sets[f"benign:{kind}"] = _arrays_inputs(
                ckpt, benign_perturbations(arrays, kind, seed)
            )
            bar.update(1)
        ood_sets = {
            name: _arrays_inputs(ckpt, images)
            for name, images in load_ood_sets(max_per_set, seed).items()
        }
        bar.update(2)
        clean = to_model_batch(arrays[:attack_count], ckpt.preprocess)
        adversarial, flips = adversarial_inputs(ckpt, clean, epsilons, seed)
        bar.update(1)
    return in_sets, {**ood_sets, **adversarial}, flips


# ---------------------------------------------------------------- report


def operating_thresholds(
    state: OODState, calibration: Sequence[OODInputs], detectors: Sequence[str]
) -> dict[str, float]:
    """The shipped threshold for the shipped detector; for the others, thresholds calibrated
    the way the shipped one was (at most the target share of each calibration set rejected)."""
    return {
        name: state.threshold
        if name == state.detector and math.isfinite(state.threshold)
        else calibrate_on_sets(
            [scores_from_inputs(state, inputs, name) for inputs in calibration],
            state.target_fpr,
        )
        for name in detectors
    }


def _ood_metrics(in_scores: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    return {
        "auroc": auroc(in_scores, scores),
        "fpr_at_95_tpr": fpr_at_tpr(in_scores, scores),
        "rejected": rejection_rate(scores, threshold),
    }


def evaluate_ood(
    ckpt: ACIRCheckpoint,
    data_dir: Path | str,
    detectors: Sequence[str] = DETECTORS,
    max_per_set: int | None = 500,
    seed: int = 0,
    attack_count: int = 200,
    epsilons: Sequence[float] = EPSILONS,
) -> dict[str, Any]:
    """Per detector and set: AUROC, FPR@95%TPR, rejection; false rejection of in-dist sets."""
    detectors = [check_detector(d) for d in detectors]
    if ckpt.decoder is None and "reconstruction" in detectors:
        logger.warning("checkpoint has no decoder: the reconstruction detector is left out")
        detectors.remove("reconstruction")
    torch.manual_seed(seed)
    state = ckpt.ood
    if not _has_all_stats(state):
        logger.warning("checkpoint OOD statistics missing or stale; refitting from %s", data_dir)
        state = refit_ood(ckpt, data_dir, state.detector, state.target_fpr)
    calibration = [_inputs(ckpt, split_batch(ckpt, data_dir, name, 4000, seed)[0])
                   for name in CALIBRATION_SPLITS]  # fmt: skip
    thresholds = operating_thresholds(state, calibration, detectors)
    in_sets, ood_sets, flips = evaluation_inputs(
        ckpt, data_dir, max_per_set, attack_count, epsilons, seed
    )
    scores = {
        set_name: {d: scores_from_inputs(state, inputs, d) for d in detectors}
        for set_name, inputs in {**in_sets, **ood_sets}.items()
    }
    query = scores["query"]
    return {
        "checkpoint_sha256": ckpt.sha256,
        "shipped_detector": state.detector,
        "shipped_threshold": float(state.threshold),
        "target_fpr": float(state.target_fpr),
        "stats_source": "checkpoint" if state is ckpt.ood else "refit",
        "thresholds": {d: float(t) for d, t in thresholds.items()},
        "counts": {name: len(next(iter(s.values()))) for name, s in scores.items()},
        "false_rejection": {
            name: {d: rejection_rate(scores[name][d], thresholds[d]) for d in detectors}
            for name in in_sets
        },
        "ood": {
            name: {d: _ood_metrics(query[d], scores[name][d], thresholds[d]) for d in detectors}
            for name in ood_sets
        },
        "adversarial_bit_flip_rate": flips,
        "settings": {"max_per_set": max_per_set, "seed": seed, "attack_count": attack_count},
    }


def _table(
    title: str, rows: dict[str, dict[str, float]], detectors: list[str], fmt: str
) -> list[str]:
    lines = [f"**{title}**", "", "| set | " + " | ".join(detectors) + " |"]
    lines.append("|---|" + "---:|" * len(detectors))
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(format(values[d], fmt) for d in detectors) + " |")
    return [*lines, ""]


def ood_report_markdown(report: dict[str, Any]) -> str:
    """Three tables (AUROC, FPR@95%TPR, rejection at the operating threshold) for the docs."""
    detectors = list(report["thresholds"])
    ood = report["ood"]
    metric = {
        key: {n: {d: v[d][key] for d in detectors} for n, v in ood.items()}
        for key in ("auroc", "fpr_at_95_tpr", "rejected")
    }
    rejected = {**report["false_rejection"], **metric["rejected"]}
    head = (
        f"Shipped detector `{report['shipped_detector']}`, threshold "
        f"{report['shipped_threshold']:.5g} (target false rejection {report['target_fpr']:.0%}); "
        f"set sizes: " + ", ".join(f"{k} {v}" for k, v in report["counts"].items()) + "."
    )
    tables = (
        ("AUROC (in-distribution = query split)", metric["auroc"], ".3f"),
        ("FPR at 95% TPR", metric["fpr_at_95_tpr"], ".3f"),
        ("Rejected at the operating threshold (first rows: must stay low)", rejected, ".1%"),
    )
    lines = [head, ""]
    for title, rows, fmt in tables:
        lines += _table(title, rows, detectors, fmt)
    return "\n".join(lines)
