"""Offline OOD sets: every source loads, arrays are usable images, sampling is deterministic."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from models.data import ood_sets
from models.data.ood_sets import (
    BENIGN_KINDS,
    benign_perturbations,
    grid_crops,
    read_idx_images,
)


def _require_module(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")


def _require_path(path: Path, package: str) -> None:
    if not path.exists():
        pytest.skip(f"{path} is missing (Debian package {package} not installed)")


def _check_images(images: list[np.ndarray], at_least: int) -> None:
    assert len(images) >= at_least
    for image in images:
        assert isinstance(image, np.ndarray) and image.ndim in (2, 3)
        assert min(image.shape[:2]) >= 8
        assert np.issubdtype(image.dtype, np.number)
        assert np.isfinite(image).all() and np.ptp(image) > 0


def test_skimage_and_sklearn_photos() -> None:
    _require_module("skimage")
    _require_module("sklearn")
    _check_images(ood_sets.skimage_photos(), len(ood_sets.SKIMAGE_PHOTOS))
    _check_images(ood_sets.sklearn_photos(), 2)
    _check_images(ood_sets.lfw_faces(), 200)


def test_fashion_mnist_sample_is_seeded() -> None:
    _require_path(ood_sets.FASHION_MNIST_DIR, "dataset-fashion-mnist")
    first = ood_sets.fashion_mnist(20, seed=4)
    _check_images(first, 20)
    assert first[0].shape == (28, 28) and first[0].dtype == np.uint8
    again = ood_sets.fashion_mnist(20, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_read_idx_images_round_trip(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = b"".join(int(v).to_bytes(4, "big") for v in (2051, 2, 3, 4))
    path = tmp_path / "images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(header + images.tobytes())
    np.testing.assert_array_equal(read_idx_images(path), images)
    bad = tmp_path / "labels-idx1-ubyte"
    bad.write_bytes((2049).to_bytes(4, "big") + bytes(12))
    with pytest.raises(ValueError, match="IDX3"):
        read_idx_images(bad)


def test_near_sources() -> None:
    _require_module("pydicom")
    _check_images(ood_sets.pydicom_images(), 2)  # CT_small / MR_small ship with pydicom itself
    _require_module("skimage")
    _check_images(ood_sets.skimage_medical(), len(ood_sets.SKIMAGE_MEDICAL))
    _require_path(ood_sets.ITK_DATA_DIR, "insighttoolkit5-examples")
    _check_images(ood_sets.itk_slices(), len(ood_sets.ITK_SLICES))


def test_grid_crops_are_whole_plus_grid_and_skip_blank() -> None:
    image = np.random.default_rng(0).random((90, 120))
    crops = grid_crops(image, fractions=(0.5,), steps=2)
    assert len(crops) == 5 and crops[0].shape == (90, 120) and crops[1].shape == (45, 45)
    image[:, 60:] = 0.0  # the right half is blank: its crops go
    assert len(grid_crops(image, fractions=(0.4,), steps=2)) == 3


def test_macaque_patches_are_seeded_brain_patches() -> None:
    _require_path(ood_sets.MACAQUE_VOLUME, "mricron-data")
    patches = ood_sets.macaque_images(12, seed=2)
    _check_images(patches, 12)
    assert all(p.shape == (64, 64) for p in patches)
    assert all((p > 0).mean() >= 0.3 for p in patches)
    again = ood_sets.macaque_images(12, seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(patches, again, strict=True))


@pytest.mark.parametrize("kind", BENIGN_KINDS)
def test_benign_perturbations_are_mild(kind: str) -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    image = (127 + 100 * np.sin(xx / 9.0) * np.cos(yy / 7.0)).astype(np.uint8)
    images = [image, np.flipud(image).copy()]
    out = benign_perturbations(images, kind, seed=1)
    assert len(out) == 2 and out[0].shape == image.shape
    unit = (out[0] - out[0].min()) / np.ptp(out[0])
    reference = (image - image.min()) / np.ptp(image)
    error = float(np.abs(unit - reference).mean())
    assert 0.0 < error < 0.1, kind
    assert all(
        np.array_equal(a, b)
        for a, b in zip(out, benign_perturbations(images, kind, 1), strict=True)
    )


def test_unknown_perturbation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown perturbation"):
        benign_perturbations([np.zeros((4, 4))], "blur")
