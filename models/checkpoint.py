"""Self-describing checkpoints: config, weights, classes, preprocessing, projection, OOD state.

A checkpoint loads with no outside settings. Files carry a format marker and version, and
loading refuses anything else with a :class:`CheckpointError` that says what is wrong.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.config import ModelConfig
from models.decoder import ReconstructionDecoder
from models.network import ACIRNet
from models.ood import OODState
from models.preprocess import PreprocessSpec
from models.projection import FeatureProjection

FORMAT_NAME = "acir-checkpoint"
FORMAT_VERSION = 1
_REQUIRED_KEYS = ("config", "class_names", "preprocess", "network", "projection", "ood")


class CheckpointError(Exception):
    """The file is not a loadable ACIR checkpoint of this format version."""


@dataclass
class ACIRCheckpoint:
    """A trained (or fresh) ACIR model with everything needed to serve it."""

    config: ModelConfig
    class_names: list[str]
    preprocess: PreprocessSpec
    network: ACIRNet
    decoder: ReconstructionDecoder | None
    projection: FeatureProjection
    ood: OODState
    training: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    @property
    def bits(self) -> int:
        return self.config.bits


def default_preprocess(config: ModelConfig) -> PreprocessSpec:
    return PreprocessSpec(image_size=config.image_size, channels=config.in_channels)


def new_checkpoint(config: ModelConfig, class_names: list[str], seed: int = 0) -> ACIRCheckpoint:
    """An untrained checkpoint (seeded weights, identity projection, gate open)."""
    torch.manual_seed(seed)
    network = ACIRNet(config, num_classes=len(class_names)).eval()
    decoder = ReconstructionDecoder(config).eval()
    return ACIRCheckpoint(
        config=config,
        class_names=list(class_names),
        preprocess=default_preprocess(config),
        network=network,
        decoder=decoder,
        projection=FeatureProjection.identity(network.feature_dim),
        ood=OODState(),
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ood_to_payload(state: OODState) -> dict[str, Any]:
    payload = state.to_dict()
    payload["stats"] = {k: torch.from_numpy(np.asarray(v)) for k, v in state.stats.items()}
    return payload


def _ood_from_payload(payload: dict[str, Any]) -> OODState:
    data = dict(payload)
    data["stats"] = {k: v.numpy() for k, v in payload.get("stats", {}).items()}
    return OODState.from_dict(data)


def save_checkpoint(ckpt: ACIRCheckpoint, path: Path) -> str:
    """Write atomically (temp file + rename); returns and records the file's SHA-256."""
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": ckpt.config.to_dict(),
        "class_names": list(ckpt.class_names),
        "preprocess": ckpt.preprocess.to_dict(),
        "network": ckpt.network.state_dict(),
        "decoder": None if ckpt.decoder is None else ckpt.decoder.state_dict(),
        "projection": ckpt.projection.to_tensors(),
        "ood": _ood_to_payload(ckpt.ood),
        "training": ckpt.training,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp_name)
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; a checkpoint is meant to be shared
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    ckpt.sha256 = file_sha256(path)
    return ckpt.sha256


def _read_payload(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        raise CheckpointError(f"{path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not an ACIR checkpoint (missing format marker)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}; this build reads {FORMAT_VERSION}"
        )
    missing = [key for key in _REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{path} lacks required entries: {missing}")
    return payload


def _build_modules(
    payload: dict[str, Any], config: ModelConfig
) -> tuple[ACIRNet, ReconstructionDecoder | None]:
    network = ACIRNet(config, num_classes=len(payload["class_names"]))
    network.load_state_dict(payload["network"])
    decoder = None
    if payload.get("decoder") is not None:
        decoder = ReconstructionDecoder(config)
        decoder.load_state_dict(payload["decoder"])
        decoder.eval()
    return network.eval(), decoder


def load_checkpoint(path: Path) -> ACIRCheckpoint:
    """Load a checkpoint written by :func:`save_checkpoint`; raises :class:`CheckpointError`."""
    path = Path(path)
    payload = _read_payload(path)
    try:
        config = ModelConfig.from_dict(payload["config"])
        network, decoder = _build_modules(payload, config)
        ckpt = ACIRCheckpoint(
            config=config,
            class_names=list(payload["class_names"]),
            preprocess=PreprocessSpec.from_dict(payload["preprocess"]),
            network=network,
            decoder=decoder,
            projection=FeatureProjection.from_tensors(payload["projection"]),
            ood=_ood_from_payload(payload["ood"]),
            training=dict(payload.get("training") or {}),
        )
    except (ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{path} does not match this model code: {exc}") from exc
    ckpt.sha256 = file_sha256(path)
    return ckpt
