"""Stage-1 (hashing) and stage-2 (reconstruction decoder) training loops.

Seeded, resumable (state saved each epoch under ``run_dir``), model selection on the validation
split only (mAP@all of val queries against the database split), explicit torch thread count.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from models.config import ModelConfig
from models.data import LabelledImages, PatchDataset
from models.decoder import ReconstructionDecoder
from models.loss import class_weights, sch_total_loss
from models.metrics import hamming_ranking, retrieval_metrics
from models.network import ACIRNet, ACIROutput, binary_codes
from models.preprocess import PreprocessSpec, to_model_batch

logger = logging.getLogger(__name__)

Objective = Callable[[ACIROutput, Tensor, Tensor, Tensor], tuple[Tensor, dict[str, float]]]
_STATE_FILE = "train_state.pt"


@dataclass
class TrainSettings:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 2
    seed: int = 0
    threads: int = 2
    quant_weight: float = 0.5
    ce_weight: float = 0.5
    fingerprint_weighting: bool = True
    decoder_epochs: int = 8
    decoder_lr: float = 2e-3
    device: str = "cpu"  # torch device of the training step, e.g. "cuda" (results stay on CPU)


@dataclass
class TrainingData:
    train: LabelledImages
    val: LabelledImages
    db: LabelledImages
    spec: PreprocessSpec

    @property
    def num_classes(self) -> int:
        return len(self.train.class_names)


@dataclass
class TrainResult:
    network: ACIRNet
    best_epoch: int
    best_val_map: float
    history: list[dict[str, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def sch_objective(settings: TrainSettings) -> Objective:
    """The ACIR objective: SCH contrastive + quantisation + class cross-entropy."""

    def objective(out: ACIROutput, labels: Tensor, prints: Tensor, weights: Tensor) -> Any:
        return sch_total_loss(
            out,
            labels,
            prints,
            weights,
            quant_weight=settings.quant_weight,
            ce_weight=settings.ce_weight,
            fingerprint_weighting=settings.fingerprint_weighting,
        )

    return objective


def encode_outputs(
    network: ACIRNet,
    images: LabelledImages | np.ndarray,
    spec: PreprocessSpec,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Continuous hash outputs u (`codes_of` gives their bits) and raw blended features (both
    float32) of un-augmented images, in eval mode."""
    arrays = images.images if isinstance(images, LabelledImages) else images
    device = next(network.parameters()).device
    was_training = network.training
    network.eval()
    outputs, feats = [], []
    with torch.inference_mode():
        for start in range(0, len(arrays), batch_size):
            batch = to_model_batch(list(arrays[start : start + batch_size]), spec).to(device)
            out = network(batch)
            outputs.append(out.u.float().cpu().numpy())
            feats.append(out.feature.cpu().numpy())
    network.train(was_training)
    return np.concatenate(outputs), np.concatenate(feats).astype(np.float32)


def encode_images(
    network: ACIRNet,
    images: LabelledImages | np.ndarray,
    spec: PreprocessSpec,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Bits (bool) and raw blended features (float32) of un-augmented images, in eval mode."""
    outputs, feats = encode_outputs(network, images, spec, batch_size)
    return codes_of(outputs), feats


def codes_of(outputs: np.ndarray) -> np.ndarray:
    """Boolean codes of continuous hash outputs from `encode_outputs` (network.binary_codes)."""
    return binary_codes(torch.from_numpy(outputs)).numpy()


def validation_map(network: ACIRNet, data: TrainingData) -> float:
    """mAP@all of val queries against the database split (Hamming, ties by index)."""
    q_bits, _ = encode_images(network, data.val, data.spec)
    db_bits, _ = encode_images(network, data.db, data.spec)
    ranking = hamming_ranking(q_bits, db_bits)
    return retrieval_metrics(ranking, data.val.labels, data.db.labels)["map@all"]


def _lr_lambda(settings: TrainSettings, steps_per_epoch: int) -> Callable[[int], float]:
    warmup = max(1, settings.warmup_epochs * steps_per_epoch)
    total = max(warmup + 1, settings.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / (total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _loader(data: TrainingData, config: ModelConfig, settings: TrainSettings) -> DataLoader:
    dataset = PatchDataset(
        data.train.images,
        data.train.labels,
        data.spec,
        augment=True,
        fingerprint_size=config.fingerprint_size,
        seed=settings.seed,
    )
    generator = torch.Generator().manual_seed(settings.seed)
    return DataLoader(
        dataset, batch_size=settings.batch_size, shuffle=True, drop_last=True, generator=generator
    )


class _Run:
    """Mutable state of one stage-1 run, saved whole for resumption."""

    def __init__(self, config: ModelConfig, data: TrainingData, settings: TrainSettings) -> None:
        seed_everything(settings.seed)
        self.device = torch.device(settings.device)
        self.network = ACIRNet(config, data.num_classes).to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.network.parameters(),
            lr=settings.lr,
            betas=(0.9, 0.95),
            weight_decay=settings.weight_decay,
        )
        self.loader = _loader(data, config, settings)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(settings, len(self.loader))
        )
        self.epoch = 0
        self.best_epoch = -1
        self.best_map = -1.0
        self.best_state: dict[str, Tensor] = copy.deepcopy(self.network.state_dict())
        self.history: list[dict[str, float]] = []

    def state(self, settings: TrainSettings) -> dict[str, Any]:
        return {
            "settings": asdict(settings),
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_map": self.best_map,
            "best_state": self.best_state,
            "history": self.history,
            "torch_rng": torch.get_rng_state(),
            "loader_rng": self.loader.generator.get_state() if self.loader.generator else None,
            "augment_rng": self._dataset.generator_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best_epoch = state["epoch"], state["best_epoch"]
        self.best_map, self.best_state = state["best_map"], state["best_state"]
        self.history = state["history"]
        torch.set_rng_state(state["torch_rng"])
        if state["loader_rng"] is not None and self.loader.generator is not None:
            self.loader.generator.set_state(state["loader_rng"])
        if state.get("augment_rng") is not None:  # absent in states saved before it was kept
            self._dataset.set_generator_state(state["augment_rng"])

    @property
    def _dataset(self) -> PatchDataset:
        dataset = self.loader.dataset
        assert isinstance(dataset, PatchDataset)
        return dataset


def _train_epoch(run: _Run, objective: Objective, weights: Tensor, bar: tqdm) -> float:
    run.network.train()
    total, batches = 0.0, 0
    for batch in run.loader:
        images, prints, labels = (t.to(run.device, non_blocking=True) for t in batch)
        loss, _parts = objective(run.network(images), labels, prints, weights)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(run.network.parameters(), 5.0)
        run.optimizer.step()
        run.scheduler.step()
        total, batches = total + float(loss.detach()), batches + 1
        bar.set_postfix(loss=f"{total / batches:.4f}", best_val_map=f"{max(run.best_map, 0):.3f}")
    return total / max(batches, 1)


def train_hashing(
    config: ModelConfig,
    data: TrainingData,
    settings: TrainSettings,
    objective: Objective | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Stage 1: train the hashing network; keep the epoch with the best validation mAP."""
    torch.set_num_threads(settings.threads)
    run = _Run(config, data, settings)
    state_path = None if run_dir is None else Path(run_dir) / _STATE_FILE
    if resume and state_path is not None and state_path.exists():
        run.restore(torch.load(state_path, map_location="cpu", weights_only=False))
        logger.info("resumed stage 1 at epoch %d", run.epoch)
    objective = objective or sch_objective(settings)
    weights = class_weights(torch.as_tensor(data.train.labels), data.num_classes).to(run.device)
    bar = tqdm(total=settings.epochs, initial=run.epoch, desc="stage 1", disable=not progress)
    while run.epoch < settings.epochs:
        if hasattr(objective, "set_epoch"):
            objective.set_epoch(run.epoch, settings.epochs)
        began = time.perf_counter()
        loss = _train_epoch(run, objective, weights, bar)
        val_map = validation_map(run.network, data)
        seconds = round(time.perf_counter() - began, 2)  # training + validation wall time
        run.history.append(
            {"epoch": run.epoch, "loss": loss, "val_map": val_map, "seconds": seconds}
        )
        if val_map > run.best_map:
            run.best_map, run.best_epoch = val_map, run.epoch
            run.best_state = copy.deepcopy(run.network.state_dict())
        run.epoch += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", val_map=f"{val_map:.3f}", best=f"{run.best_map:.3f}")
        if state_path is not None:
            state_path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(run.state(settings), state_path)
    bar.close()
    run.network.load_state_dict(run.best_state)
    return TrainResult(run.network.eval(), run.best_epoch, run.best_map, run.history)


def train_decoder(
    network: ACIRNet,
    config: ModelConfig,
    data: TrainingData,
    settings: TrainSettings,
    progress: bool = True,
) -> ReconstructionDecoder:
    """Stage 2: train the reconstruction decoder on frozen stage-1 features."""
    torch.set_num_threads(settings.threads)
    seed_everything(settings.seed + 1)
    network.eval().requires_grad_(False)
    device = next(network.parameters()).device
    decoder = ReconstructionDecoder(config).to(device)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=settings.decoder_lr)
    loader = _loader(data, config, settings)
    bar = tqdm(range(settings.decoder_epochs), desc="stage 2", disable=not progress)
    for _ in bar:
        total, batches = 0.0, 0
        for images, _prints, _labels in loader:
            images = images.to(device, non_blocking=True)
            with torch.no_grad():
                deep = network(images).deep
            loss = nn.functional.mse_loss(decoder(deep), images)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, batches = total + float(loss), batches + 1
        bar.set_postfix(recon_mse=f"{total / max(batches, 1):.5f}")
    network.requires_grad_(True)
    return decoder.eval()
