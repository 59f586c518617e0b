"""The one preprocessing shared by training, indexing and serving.

Any 2-D (H, W) or (H, W, C) array of any dtype becomes float32 (C, S, S) in [0, 1]: colour is
reduced to luminance, intensities are scaled per image between two percentiles (robust to a few hot
pixels), the image is resized bilinearly to S×S (aspect ignored) and replicated to ``channels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class PreprocessSpec:
    """How raw images become network input; stored in every checkpoint."""

    image_size: int
    channels: int = 3
    low_percentile: float = 0.5
    high_percentile: float = 99.5

    def __post_init__(self) -> None:
        if self.image_size < 1 or self.channels < 1:
            raise ValueError("image_size and channels must be positive")
        if not 0.0 <= self.low_percentile < self.high_percentile <= 100.0:
            raise ValueError("need 0 <= low_percentile < high_percentile <= 100")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        return cls(
            image_size=int(data["image_size"]),
            channels=int(data.get("channels", 3)),
            low_percentile=float(data.get("low_percentile", 0.5)),
            high_percentile=float(data.get("high_percentile", 99.5)),
        )


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """float32 (H, W): luminance of RGB/RGBA, first band of 2-band (gray + alpha), else as is."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        return arr[..., :3].astype(np.float32) @ _LUMA
    if arr.ndim == 3 and arr.shape[-1] == 2:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D image or (H, W, C) with C <= 4, got shape {arr.shape}")
    return arr.astype(np.float32)


def intensity_bounds(gray: np.ndarray, spec: PreprocessSpec) -> tuple[float, float]:
    """(low, high) percentiles; falls back to (min, max) when they coincide (sparse images)."""
    finite = gray[np.isfinite(gray)]
    if finite.size == 0:
        return 0.0, 0.0
    low, high = np.percentile(finite, [spec.low_percentile, spec.high_percentile])
    if high <= low:
        low, high = finite.min(), finite.max()
    return float(low), float(high)


def scale_intensities(gray: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """float32 (H, W) in [0, 1]; a constant (or all non-finite) image becomes zeros."""
    low, high = intensity_bounds(gray, spec)
    if high <= low:
        return np.zeros(gray.shape, dtype=np.float32)
    scaled = (np.nan_to_num(gray, nan=low) - low) / (high - low)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def resize_bilinear(gray: np.ndarray, size: int) -> np.ndarray:
    """float32 (size, size); PIL's bilinear filter (antialiased when shrinking)."""
    if gray.shape == (size, size):
        return gray.astype(np.float32, copy=True)
    resized = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32), mode="F").resize(
        (size, size), Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def to_model_gray(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """float32 (S, S) in [0, 1]: the single-channel core of :func:`to_model_input`."""
    return resize_bilinear(scale_intensities(to_grayscale(image), spec), spec.image_size)


def to_model_input(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """float32 (C, S, S) in [0, 1], ready for the network."""
    gray = to_model_gray(image, spec)
    return np.repeat(gray[None], spec.channels, axis=0)


def to_model_batch(images: Sequence[np.ndarray], spec: PreprocessSpec) -> torch.Tensor:
    """float32 Tensor [N, C, S, S] of :func:`to_model_input` applied to each image."""
    if len(images) == 0:
        size = spec.image_size
        return torch.zeros((0, spec.channels, size, size), dtype=torch.float32)
    grays = np.stack([to_model_gray(image, spec) for image in images])
    batch = torch.from_numpy(grays).unsqueeze(1)
    return batch.expand(-1, spec.channels, -1, -1).contiguous()
