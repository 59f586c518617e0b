"""End-to-end model building: data → stage 1 → stage 2 → projection + OOD fit → checkpoint,
and evaluation of a checkpoint on a data set's query/database splits."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.checkpoint import ACIRCheckpoint, default_preprocess, load_checkpoint, new_checkpoint
from models.config import ModelConfig
from models.data import load_split
from models.metrics import hamming_ranking, retrieval_metrics
from models.ood import OODState, fit_ood_state
from models.preprocess import PreprocessSpec, to_model_batch
from models.projection import fit_projection
from models.training import (
    TrainingData,
    TrainSettings,
    encode_images,
    train_decoder,
    train_hashing,
)

logger = logging.getLogger(__name__)


def load_training_data(data_dir: Path, spec: PreprocessSpec) -> TrainingData:
    return TrainingData(
        train=load_split(data_dir, "train"),
        val=load_split(data_dir, "val"),
        db=load_split(data_dir, "db"),
        spec=spec,
    )


def _batch(images: np.ndarray, spec: PreprocessSpec) -> torch.Tensor:
    return to_model_batch(list(images), spec)


def ood_state_for(
    ckpt: ACIRCheckpoint, data: TrainingData, detector: str, target_fpr: float
) -> OODState:
    """OOD statistics from the train split (with its labels); threshold calibrated so that at
    most ``target_fpr`` of val AND of db (held-out images of the training volume, the archive the
    service indexes) are rejected: val alone (a smooth population template) set a threshold
    that refused 9% of the training volume's own held-out patches.

    The one OOD fit: the end of `acir train`, `acir train --stage ood` and `acir eval-ood` (for
    stale statistics) all use it, so they agree.
    """
    val, *others = calibration_batches(data)
    return fit_ood_state(
        ckpt.network,
        ckpt.decoder,
        _batch(data.train.images, data.spec),
        val,
        detector=detector,
        target_fpr=target_fpr,
        train_labels=data.train.labels,
        extra_calibration_images=others,
    )


# The in-distribution splits an OOD threshold is calibrated on, val first (`ood_state_for`).
CALIBRATION_SPLITS = ("val", "db")


def calibration_batches(data: TrainingData) -> list[torch.Tensor]:
    """Preprocessed images of each of `CALIBRATION_SPLITS`, in that order."""
    return [_batch(getattr(data, name).images, data.spec) for name in CALIBRATION_SPLITS]


def fit_checkpoint_projection(
    ckpt: ACIRCheckpoint, data: TrainingData, projection_dim: int
) -> None:
    """PCA of the train split's blended features: the stored re-ranking features."""
    _, train_features = encode_images(ckpt.network, data.train, data.spec)
    ckpt.projection = fit_projection(train_features, projection_dim)


def finish_checkpoint(
    ckpt: ACIRCheckpoint,
    data: TrainingData,
    settings: TrainSettings,
    detector: str,
    target_fpr: float,
    projection_dim: int,
    progress: bool = True,
) -> None:
    """Stage 2 + feature projection + OOD statistics/threshold, in place."""
    ckpt.decoder = train_decoder(ckpt.network, ckpt.config, data, settings, progress=progress)
    fit_checkpoint_projection(ckpt, data, projection_dim)
    torch.set_num_threads(settings.threads)
    ckpt.ood = ood_state_for(ckpt, data, detector, target_fpr)


def train_checkpoint(
    config: ModelConfig,
    data_dir: Path,
    settings: TrainSettings,
    run_dir: Path,
    detector: str,
    target_fpr: float = 0.05,
    projection_dim: int = 128,
    resume: bool = False,
    progress: bool = True,
    with_stage2: bool = True,
) -> ACIRCheckpoint:
    """Stage 1, then (unless `with_stage2` is False) stage 2 and the OOD fit; unsaved."""
    spec = default_preprocess(config)
    data = load_training_data(data_dir, spec)
    started = time.perf_counter()
    result = train_hashing(
        config, data, settings, run_dir=run_dir, resume=resume, progress=progress
    )
    ckpt = new_checkpoint(config, data.train.class_names, seed=settings.seed)
    ckpt.network = result.network
    if with_stage2:
        finish_checkpoint(ckpt, data, settings, detector, target_fpr, projection_dim, progress)
    else:  # stage 1 only: no decoder yet, the gate stays open until `--stage 2`
        ckpt.decoder = None
        fit_checkpoint_projection(ckpt, data, projection_dim)
    ckpt.training = {
        "settings": asdict(settings),
        "best_epoch": result.best_epoch,
        "best_val_map": result.best_val_map,
        "history": result.history,
        "train_seconds": round(time.perf_counter() - started, 1),
        "data_dir_name": Path(data_dir).name,
    }
    return ckpt


def retrain_stage2(
    ckpt_path: Path,
    data_dir: Path,
    settings: TrainSettings,
    detector: str,
    target_fpr: float = 0.05,
    projection_dim: int = 128,
    progress: bool = True,
) -> ACIRCheckpoint:
    """Stage 2 alone on an existing checkpoint (stage-1 weights untouched)."""
    ckpt = load_checkpoint(ckpt_path)
    data = load_training_data(data_dir, ckpt.preprocess)
    finish_checkpoint(ckpt, data, settings, detector, target_fpr, projection_dim, progress)
    return ckpt


def refit_ood_only(
    ckpt_path: Path, data_dir: Path, detector: str, target_fpr: float, threads: int = 2
) -> ACIRCheckpoint:
    """Refit only the OOD gate of a checkpoint (network, decoder and projection untouched)."""
    torch.set_num_threads(threads)
    ckpt = load_checkpoint(ckpt_path)
    data = load_training_data(data_dir, ckpt.preprocess)
    ckpt.ood = ood_state_for(ckpt, data, detector, target_fpr)
    ckpt.training = {**ckpt.training, "ood_refit": {"detector": detector, "target_fpr": target_fpr}}
    return ckpt


def evaluate_checkpoint(ckpt: ACIRCheckpoint, data_dir: Path) -> dict[str, Any]:
    """Hamming retrieval metrics: queries = query split, database = db split."""
    query = load_split(data_dir, "query")
    database = load_split(data_dir, "db")
    q_bits, q_feats = encode_images(ckpt.network, query, ckpt.preprocess)
    db_bits, db_feats = encode_images(ckpt.network, database, ckpt.preprocess)
    metrics = retrieval_metrics(hamming_ranking(q_bits, db_bits), query.labels, database.labels)
    return {
        "metrics": metrics,
        "n_queries": len(query.labels),
        "n_database": len(database.labels),
        "bits": ckpt.bits,
        "query_bits": q_bits,
        "db_bits": db_bits,
        "query_features": ckpt.projection.apply(q_feats),
        "db_features": ckpt.projection.apply(db_feats),
        "query_labels": query.labels,
        "db_labels": database.labels,
    }
