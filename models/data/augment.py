"""Training augmentation for cross-volume robustness, in plain torch (no torchvision).

Works on one grayscale image [S, S] in [0, 1]: a single affine resample does random-resized-crop
(area 0.8–1, aspect 3/4–4/3), horizontal flip (left/right mirror is anatomically plausible; vertical
flips are not) and a small rotation; then gamma, contrast and brightness jitter, an occasional
gaussian blur (the MNI152 template is smoother than a single-subject scan) and mild noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class AugmentSettings:
    crop_scale: tuple[float, float] = (0.8, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    max_rotation_deg: float = 10.0
    flip_p: float = 0.5
    max_log_gamma: float = 0.35
    contrast: tuple[float, float] = (0.8, 1.25)
    max_brightness: float = 0.08
    blur_p: float = 0.3
    blur_sigma: tuple[float, float] = (0.4, 1.2)
    noise_p: float = 0.5
    max_noise: float = 0.03


def _between(u: Tensor, bounds: tuple[float, float]) -> float:
    return bounds[0] + float(u) * (bounds[1] - bounds[0])


def _affine(u: Tensor, s: AugmentSettings) -> Tensor:
    """[1, 2, 3] theta mapping output to input coordinates (grid_sample convention)."""
    area = _between(u[0], s.crop_scale)
    ratio = math.exp(_between(u[1], (math.log(s.crop_ratio[0]), math.log(s.crop_ratio[1]))))
    w, h = min(1.0, math.sqrt(area * ratio)), min(1.0, math.sqrt(area / ratio))
    tx, ty = (1.0 - w) * (2 * float(u[2]) - 1), (1.0 - h) * (2 * float(u[3]) - 1)
    angle = math.radians(s.max_rotation_deg * (2 * float(u[4]) - 1))
    flip = -1.0 if float(u[5]) < s.flip_p else 1.0
    cos, sin = math.cos(angle), math.sin(angle)
    return torch.tensor(
        [[[w * flip * cos, -h * sin, tx], [w * flip * sin, h * cos, ty]]], dtype=torch.float32
    )


def _blur(x: Tensor, sigma: float) -> Tensor:
    radius = max(1, math.ceil(2 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return F.conv2d(x, kernel.view(1, 1, -1, 1))


def augment_gray(image: Tensor, generator: torch.Generator, s: AugmentSettings) -> Tensor:
    """Augmented copy of ``image`` [S, S] in [0, 1]; all randomness comes from ``generator``."""
    u = torch.rand(13, generator=generator)
    x = image.view(1, 1, *image.shape)
    grid = F.affine_grid(_affine(u, s), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = x.clamp(0.0, 1.0) ** math.exp(s.max_log_gamma * (2 * float(u[6]) - 1))
    mean = x.mean()
    x = (x - mean) * _between(u[7], s.contrast) + mean + s.max_brightness * (2 * float(u[8]) - 1)
    if float(u[9]) < s.blur_p:
        x = _blur(x, _between(u[10], s.blur_sigma))
    if float(u[11]) < s.noise_p:
        noise = torch.randn(x.shape, generator=generator)
        x = x + noise * (s.max_noise * float(u[12]))
    return x.clamp(0.0, 1.0).view(image.shape)
