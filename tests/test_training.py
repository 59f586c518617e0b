"""Stage-1 training loop: seeded determinism, validation-based selection, resumption, encoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.checkpoint import default_preprocess
from models.config import preset
from models.data import LabelledImages
from models.training import (
    Objective,
    TrainingData,
    TrainSettings,
    encode_images,
    encode_outputs,
    sch_objective,
    train_hashing,
)
from tests.conftest import blob_image

CLASSES = ["a", "b"]


def _split(seeds: range) -> LabelledImages:
    """Two visually distinct classes: smooth blobs (0) and the same blobs with stripes (1)."""
    images, labels = [], []
    for seed in seeds:
        image = blob_image(seed).astype(np.int32)
        label = seed % 2
        if label:
            image[:, ::4] = 255
        images.append(image.astype(np.uint8))
        labels.append(label)
    return LabelledImages(np.stack(images), np.array(labels), [str(s) for s in seeds], CLASSES)


@pytest.fixture(scope="module")
def data() -> TrainingData:
    config = preset("tiny", bits=16)
    return TrainingData(
        _split(range(0, 32)), _split(range(100, 112)), _split(range(200, 224)),
        default_preprocess(config),
    )  # fmt: skip


def _settings(epochs: int = 2) -> TrainSettings:
    return TrainSettings(epochs=epochs, batch_size=16, warmup_epochs=1, seed=3, threads=1)


def _weights(network: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in network.state_dict().values()]


def test_training_is_seeded_and_selects_on_validation(data: TrainingData) -> None:
    config = preset("tiny", bits=16)
    first = train_hashing(config, data, _settings(), progress=False)
    second = train_hashing(config, data, _settings(), progress=False)
    for a, b in zip(_weights(first.network), _weights(second.network), strict=True):
        assert torch.equal(a, b)
    assert [h["epoch"] for h in first.history] == [0, 1]
    assert all(h["seconds"] > 0 and np.isfinite(h["loss"]) for h in first.history)
    best = max(first.history, key=lambda h: h["val_map"])
    assert first.best_epoch == best["epoch"]
    assert first.best_val_map == best["val_map"]
    assert not first.network.training


class _SimulatedCrashError(Exception):
    pass


def _interrupt_after(calls: int, objective: Objective) -> Objective:
    """The objective, raising on its call number ``calls + 1`` (a crash mid-run)."""
    count = 0

    def wrapped(*args: Any) -> Any:
        nonlocal count
        count += 1
        if count > calls:
            raise _SimulatedCrashError
        return objective(*args)

    return wrapped


def test_resumed_run_ends_where_an_uninterrupted_one_does(
    data: TrainingData, tmp_path: Path
) -> None:
    config, settings = preset("tiny", bits=16), _settings(epochs=3)
    straight = train_hashing(config, data, settings, progress=False)
    steps_per_epoch = len(data.train.labels) // settings.batch_size
    crashing = _interrupt_after(steps_per_epoch + 1, sch_objective(settings))  # mid epoch 2
    with pytest.raises(_SimulatedCrashError):
        train_hashing(config, data, settings, objective=crashing, run_dir=tmp_path, progress=False)
    resumed = train_hashing(config, data, settings, run_dir=tmp_path, resume=True, progress=False)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    for a, b in zip(_weights(resumed.network), _weights(straight.network), strict=True):
        assert torch.equal(a, b)


def test_encode_images_gives_bits_and_features(data: TrainingData) -> None:
    config = preset("tiny", bits=16)
    result = train_hashing(config, data, _settings(epochs=1), progress=False)
    bits, feats = encode_images(result.network, data.db, data.spec, batch_size=5)
    assert bits.shape == (24, 16) and bits.dtype == bool
    assert feats.shape == (24, config.feature_dim) and feats.dtype == np.float32
    again, _ = encode_images(result.network, data.db.images, data.spec)
    assert np.array_equal(bits, again)  # batching does not change the codes
    outputs, same_feats = encode_outputs(result.network, data.db, data.spec, batch_size=5)
    assert outputs.dtype == np.float32 and np.array_equal(outputs >= 0, bits)
    assert np.array_equal(same_feats, feats)
