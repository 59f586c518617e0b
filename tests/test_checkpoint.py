from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import (
    CheckpointError,
    load_checkpoint,
    new_checkpoint,
    save_checkpoint,
)
from models.config import preset
from models.encoder import ImageEncoder
from models.ood import OODState


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _images(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, size=(40, 36), dtype=np.uint8) for _ in range(n)]


def test_round_trip_preserves_everything(tmp_path: Path) -> None:
    ckpt = new_checkpoint(preset("tiny", bits=16), ["a", "b", "c"], seed=3)
    ckpt.ood = OODState(detector="reconstruction", threshold=0.25, target_fpr=0.05)
    ckpt.training = {"best_val_map": 0.5}
    sha = save_checkpoint(ckpt, tmp_path / "m.pt")
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.sha256 == sha and len(sha) == 64
    assert loaded.config == ckpt.config
    assert loaded.class_names == ["a", "b", "c"]
    assert loaded.preprocess == ckpt.preprocess
    assert loaded.ood.threshold == pytest.approx(0.25)
    assert loaded.training["best_val_map"] == 0.5
    before = ImageEncoder(ckpt).encode(_images())
    after = ImageEncoder(loaded).encode(_images())
    np.testing.assert_array_equal(before.bits, after.bits)
    np.testing.assert_allclose(before.features, after.features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(before.ood_scores, after.ood_scores, rtol=1e-5)


def test_encoder_outputs_have_documented_shapes() -> None:
    ckpt = new_checkpoint(preset("tiny", bits=24), ["a", "b"])
    batch = ImageEncoder(ckpt).encode([*_images(4), np.zeros((20, 20, 3), np.float32)])
    assert batch.bits.shape == (5, 24) and batch.bits.dtype == bool
    assert batch.features.shape == (5, ckpt.projection.output_dim)
    np.testing.assert_allclose(np.linalg.norm(batch.features, axis=1), 1.0, rtol=1e-5)
    assert batch.ood_scores.shape == (5,) and np.isfinite(batch.ood_scores).all()
    assert set(batch.timings_ms) == {"preprocess", "network", "ood"}
    assert all(ms >= 0 for ms in batch.timings_ms.values())


def test_refuses_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not an ACIR checkpoint"):
        load_checkpoint(path)


def test_refuses_other_format_version(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    save_checkpoint(new_checkpoint(preset("tiny"), ["a", "b"]), path)
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 999
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="format version 999"):
        load_checkpoint(path)


def test_refuses_weights_of_another_architecture(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    save_checkpoint(new_checkpoint(preset("tiny"), ["a", "b"]), path)
    payload = torch.load(path, weights_only=True)
    payload["config"]["head_hidden"] = 32
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(path)


def test_refuses_missing_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
