"""ACIR network: ResNet → shallow/deep attention → DaRF + PiT → blended feature → hash head."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from models.attention import DaRFFusion, DeepPooling, PooledFusion, WindowAttention2d
from models.config import ModelConfig
from models.kan import build_head
from models.pit import PixelTransformer
from models.resnet import ResNetBackbone

# ImageNet statistics, the usual choice for 3-channel (grayscale-replicated) input.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class ACIROutput(NamedTuple):
    """Everything one forward pass produces."""

    u: Tensor  # B×bits, real-valued hash outputs (code = u >= 0)
    logits: Tensor  # B×num_classes
    feature: Tensor  # B×feature_dim, the blended feature f
    deep: Tensor  # B×C4×h×w, the raw layer4 map (decoder input)
    # B×C2×h2×w2, the raw layer2 map (read by the OOD gate); None where a caller builds an
    # output without it
    shallow: Tensor | None = None


def binary_codes(u: Tensor) -> Tensor:
    """Boolean hash codes from real outputs; sign(0) counts as +1 (``u >= 0``)."""
    return u >= 0


def _norm_stats(channels: int) -> tuple[Tensor, Tensor]:
    if channels == 3:
        mean, std = torch.tensor(_IMAGENET_MEAN), torch.tensor(_IMAGENET_STD)
    else:
        mean, std = torch.full((channels,), 0.5), torch.full((channels,), 0.25)
    return mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)


def _attention(enabled: bool, channels: int, heads: int, dim: int, window: int) -> nn.Module:
    return WindowAttention2d(channels, heads, dim, window) if enabled else nn.Identity()


def _fusion(c: ModelConfig) -> nn.Module:
    if c.fusion == "darf":
        return DaRFFusion(c.c2, c.c4, c.darf_heads, c.darf_head_dim, c.darf_dim)
    if c.fusion == "concat":
        return PooledFusion(c.c2, c.c4, c.darf_dim)
    return DeepPooling(c.c4, c.darf_dim)


class ACIRNet(nn.Module):
    """The ACIR hashing network; input B×C×S×S in [0,1] (normalised inside)."""

    mean: Tensor
    std: Tensor

    def __init__(self, config: ModelConfig, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.config, self.num_classes = config, num_classes
        mean, std = _norm_stats(config.in_channels)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.backbone = ResNetBackbone(config)
        c = config
        # With deep-only fusion nothing reads the shallow map, so it gets no attention block.
        self.shallow_attn = _attention(
            c.shallow_attention and c.fusion != "deep",
            c.c2,
            c.shallow_heads,
            c.shallow_head_dim,
            c.shallow_window,
        )
        self.deep_attn = _attention(
            c.deep_attention, c.c4, c.deep_heads, c.deep_head_dim, c.deep_window
        )
        self.fusion = _fusion(c)
        self.pit = PixelTransformer(c) if c.use_pit else None
        self.head = build_head(
            c.feature_dim, c.head_hidden, c.bits, c.kan_head, c.kan_grid, c.kan_order
        )
        self.classifier = nn.Linear(c.head_hidden, num_classes)

    @property
    def feature_dim(self) -> int:
        """Width of the blended feature."""
        return self.config.feature_dim

    def blended_feature(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(f, x2, x4)`` for an input batch in [0,1]."""
        size = self.config.image_size
        if x.dim() != 4 or x.shape[1:] != (self.config.in_channels, size, size):
            raise ValueError(
                f"expected B×{self.config.in_channels}×{size}×{size} input, got {tuple(x.shape)}"
            )
        x2, x4 = self.backbone((x - self.mean) / self.std)
        parts = [self.fusion(self.shallow_attn(x2), self.deep_attn(x4))]
        if self.pit is not None:
            parts = [*self.pit(x4), *parts]  # global, local, DaRF
        return torch.cat(parts, dim=1), x2, x4

    def forward(self, x: Tensor) -> ACIROutput:
        feature, x2, x4 = self.blended_feature(x)
        hidden, u = self.head(feature)
        return ACIROutput(u=u, logits=self.classifier(hidden), feature=feature, deep=x4, shallow=x2)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
