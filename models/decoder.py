"""Stage-2 reconstruction decoder: the layer4 map ``deep`` → an image in [0,1]."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.config import ModelConfig


class _UpBlock(nn.Module):
    """3×3 conv → BN → ReLU, then bilinear upsampling (by a factor, or to an exact size)."""

    def __init__(self, c_in: int, c_out: int, scale: int, size: int | None) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )
        self.up = (
            nn.Upsample(size=size, mode="bilinear", align_corners=False)
            if size is not None
            else nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.up(self.conv(x))


class ReconstructionDecoder(nn.Module):
    """Conv blocks with upsampling from ``deep`` (B×C4×h×w) to B×in_channels×S×S, sigmoid."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in, last = config.c4, len(config.decoder_channels) - 1
        for index, (c_out, scale) in enumerate(
            zip(config.decoder_channels, config.decoder_scales, strict=True)
        ):
            # The last block lands exactly on the input size, whatever the rounding upstream.
            size = config.image_size if index == last else None
            blocks.append(_UpBlock(c_in, c_out, scale, size))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Conv2d(c_in, config.in_channels, 3, padding=1)

    def forward(self, deep: Tensor) -> Tensor:
        return torch.sigmoid(self.out(self.blocks(deep)))
