"""Preprocessing (the one used by training, indexing and serving) and SCH fingerprints."""

import numpy as np
import pytest
import torch

from models.fingerprint import fingerprints
from models.preprocess import PreprocessSpec, to_model_batch, to_model_input

torch.set_num_threads(1)


@pytest.fixture
def ramp() -> np.ndarray:
    return np.tile(np.arange(40, dtype=np.uint16) * 100, (30, 1))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_output_dtype_shape_range(dtype: type) -> None:
    rng = np.random.default_rng(0)
    smooth = np.add.outer(np.arange(37), np.arange(53)) * 2.0
    image: np.ndarray = (smooth + rng.random((37, 53)) * 5).astype(dtype)
    out = to_model_input(image, PreprocessSpec(image_size=24, channels=3))
    assert out.dtype == np.float32
    assert out.shape == (3, 24, 24)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.max() > 0.9 and out.min() < 0.1  # percentile scaling stretches to the full range
    assert np.array_equal(out[0], out[2])  # grayscale replicated


def test_rgb_is_luminance_of_channels(ramp: np.ndarray) -> None:
    spec = PreprocessSpec(image_size=16, channels=1)
    gray = ramp.astype(np.float32)
    rgb = np.stack([gray, gray, gray], axis=-1)
    rgba = np.concatenate([rgb, np.full_like(gray, 7.0)[..., None]], axis=-1)
    np.testing.assert_allclose(to_model_input(rgb, spec), to_model_input(gray, spec), atol=1e-5)
    np.testing.assert_allclose(to_model_input(rgba, spec), to_model_input(gray, spec), atol=1e-5)
    green_only = np.zeros((30, 40, 3), np.float32)
    green_only[..., 1] = gray
    red_only = np.zeros((30, 40, 3), np.float32)
    red_only[..., 0] = gray
    # percentile scaling removes the global weight, so only the spatial pattern matters
    np.testing.assert_allclose(
        to_model_input(green_only, spec), to_model_input(red_only, spec), atol=1e-5
    )


def test_constant_image_becomes_zeros() -> None:
    out = to_model_input(np.full((20, 20), 123, np.uint8), PreprocessSpec(image_size=8))
    assert out.shape == (3, 8, 8)
    assert not out.any()


def test_sparse_image_falls_back_to_min_max() -> None:
    image = np.zeros((64, 64), np.float32)
    image[5, 5] = 10.0  # both percentiles are 0, but the image is not constant
    out = to_model_input(image, PreprocessSpec(image_size=64, channels=1))
    assert out.max() == pytest.approx(1.0)


def test_deterministic_and_batch_matches_single(ramp: np.ndarray) -> None:
    spec = PreprocessSpec(image_size=20)
    images = [ramp, ramp.T.copy(), np.full((5, 5), 3.0)]
    batch = to_model_batch(images, spec)
    assert batch.shape == (3, 3, 20, 20) and batch.dtype == torch.float32
    for i, image in enumerate(images):
        assert np.array_equal(batch[i].numpy(), to_model_input(image, spec))
    assert torch.equal(batch, to_model_batch(images, spec))
    assert to_model_batch([], spec).shape == (0, 3, 20, 20)


def test_rejects_bad_shapes_and_specs() -> None:
    with pytest.raises(ValueError):
        to_model_input(np.zeros((4, 4, 4, 4)), PreprocessSpec(image_size=8))
    with pytest.raises(ValueError):
        PreprocessSpec(image_size=8, low_percentile=90, high_percentile=10)


def test_spec_round_trip() -> None:
    spec = PreprocessSpec(image_size=48, channels=1, low_percentile=1.0, high_percentile=99.0)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec


def test_fingerprints_shape_and_area_average() -> None:
    images = torch.rand(2, 3, 32, 32)
    prints = fingerprints(images, size=16)
    assert prints.shape == (2, 256)
    assert (prints >= 0).all()
    expected = images.mean(dim=1)[:, :2, :2].mean(dim=(1, 2))  # first 2×2 block → first pixel
    torch.testing.assert_close(prints[:, 0], expected)


def test_fingerprints_separate_different_images() -> None:
    left = torch.zeros(1, 1, 16, 16)
    left[..., :8] = 1.0
    top = torch.zeros(1, 1, 16, 16)
    top[..., :8, :] = 1.0
    prints = fingerprints(torch.cat([left, top, left]), size=4)
    assert torch.equal(prints[0], prints[2])
    assert not torch.equal(prints[0], prints[1])
