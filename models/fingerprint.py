"""Fingerprints for the SCH loss: small grayscale thumbnails of the (augmented) input."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def fingerprints(images: Tensor, size: int = 16) -> Tensor:
    """[B, size*size] non-negative thumbnails of images [B, C, H, W] in [0, 1].

    Channels are averaged to grayscale, then area-resized (average pooling) to size×size.
    """
    if images.ndim != 4:
        raise ValueError(f"expected [B, C, H, W], got shape {tuple(images.shape)}")
    gray = images.float().mean(dim=1, keepdim=True)
    thumb = F.adaptive_avg_pool2d(gray, (size, size))
    return thumb.flatten(1).clamp_min(0.0)
