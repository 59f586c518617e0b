"""Model configuration: every width, depth and ablation switch of the ACIR network.

The configuration is a frozen dataclass so it can be stored in checkpoints (``to_dict`` /
``from_dict``) and hashed. ``preset`` builds the three named configurations:

* ``paper``: the configuration of method.md §2 (ResNet-50, 224 px, ~156 M parameters).
* ``compact``: same architecture, narrow and shallow, 64 px; trains and serves on a 2-core CPU.
* ``tiny``: a few tens of thousands of parameters for tests, every part switched on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

_BLOCKS = ("basic", "bottleneck")
# How the shallow (layer2) and deep (layer4) maps become the fused feature: DaRF cross-attention,
# pooled concatenation of both (the cross-attention ablation), or the deep map alone (no fusion;
# the plain-backbone feature of the hashing literature).
FUSIONS = ("darf", "concat", "deep")
_TUPLE_FIELDS = ("layers", "stage_widths", "decoder_channels", "decoder_scales")


def _down(size: int) -> int:
    """Spatial size after a stride-2 layer with 'same'-style padding (ceil(size / 2))."""
    return (size + 1) // 2


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters of :class:`models.network.ACIRNet`."""

    image_size: int = 224
    in_channels: int = 3
    bits: int = 64
    fingerprint_size: int = 16
    # backbone
    block: str = "bottleneck"
    layers: tuple[int, ...] = (3, 4, 6, 3)
    stage_widths: tuple[int, ...] = (64, 128, 256, 512)
    stem_width: int = 64
    stem_kernel: int = 7
    stem_maxpool: bool = True
    # windowed self-attention on layer2 (shallow) and layer4 (deep)
    shallow_attention: bool = True
    shallow_window: int = 7
    shallow_heads: int = 8
    shallow_head_dim: int = 64
    deep_attention: bool = True
    deep_window: int = 7
    deep_heads: int = 8
    deep_head_dim: int = 64
    # DaRF cross-attention fusion (see FUSIONS)
    fusion: str = "darf"
    darf_heads: int = 12
    darf_head_dim: int = 128
    darf_dim: int = 512
    # pixel transformer
    use_pit: bool = True
    pit_depth: int = 12
    pit_dim: int = 768
    pit_heads: int = 12
    pit_mlp_dim: int = 3072
    pit_dropout: float = 0.1
    pit_multilayer: bool = True
    pit_last_layers: int = 6
    branch_dim: int = 1536
    # hashing head
    kan_head: bool = True
    head_hidden: int = 512
    kan_grid: int = 5
    kan_order: int = 3
    # stage-2 reconstruction decoder (per stage: conv to channels, then upsample by scale)
    decoder_channels: tuple[int, ...] = (512, 256, 64)
    decoder_scales: tuple[int, ...] = (2, 4, 4)

    def __post_init__(self) -> None:
        for name in _TUPLE_FIELDS:  # accept lists (e.g. from JSON) but store tuples
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        self._validate()

    def _validate(self) -> None:
        problems: list[str] = []
        if self.bits <= 0 or self.bits % 8:
            problems.append(f"bits must be a positive multiple of 8, got {self.bits}")
        if self.fusion not in FUSIONS:
            problems.append(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.block not in _BLOCKS:
            problems.append(f"block must be one of {_BLOCKS}, got {self.block!r}")
        if len(self.layers) != 4 or len(self.stage_widths) != 4 or min(self.layers) < 1:
            problems.append("layers and stage_widths need four entries, each layer count >= 1")
        if len(self.decoder_channels) != len(self.decoder_scales) or not self.decoder_channels:
            problems.append("decoder_channels and decoder_scales must be non-empty, equal length")
        if self.pit_dim % self.pit_heads:
            problems.append("pit_dim must be divisible by pit_heads")
        if not 1 <= self.pit_last_layers <= self.pit_depth:
            problems.append("pit_last_layers must be in [1, pit_depth]")
        if self.image_size < 8 or self.in_channels < 1 or self.fingerprint_size < 1:
            problems.append("image_size >= 8, in_channels >= 1, fingerprint_size >= 1 required")
        if self.kan_grid < 1 or self.kan_order < 0:
            problems.append("kan_grid >= 1 and kan_order >= 0 required")
        if problems:
            raise ValueError("invalid ModelConfig: " + "; ".join(problems))

    @property
    def darf_fusion(self) -> bool:
        """Whether the fused feature comes from DaRF cross-attention."""
        return self.fusion == "darf"

    @property
    def expansion(self) -> int:
        """Channel multiplier of the residual block (1 basic, 4 bottleneck)."""
        return 4 if self.block == "bottleneck" else 1

    @property
    def c2(self) -> int:
        """Channels of the layer2 map ``x2``."""
        return self.stage_widths[1] * self.expansion

    @property
    def c4(self) -> int:
        """Channels of the layer4 map ``x4``."""
        return self.stage_widths[3] * self.expansion

    @property
    def x2_size(self) -> int:
        """Side of the layer2 map for an ``image_size`` input."""
        size = _down(self.image_size)  # stride-2 stem conv
        if self.stem_maxpool:
            size = _down(size)
        return _down(size)  # layer2 is the first strided stage

    @property
    def x4_size(self) -> int:
        """Side of the layer4 map for an ``image_size`` input."""
        return _down(_down(self.x2_size))

    @property
    def pit_layers_used(self) -> int:
        """How many transformer layers contribute tokens to the branches."""
        return self.pit_last_layers if self.pit_multilayer else 1

    @property
    def feature_dim(self) -> int:
        """Width of the blended feature ``f`` = global + local + DaRF."""
        return (2 * self.branch_dim if self.use_pit else 0) + self.darf_dim

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        for name in _TUPLE_FIELDS:
            out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``.

        Configurations stored before ``fusion`` existed carry ``darf_fusion: bool``; it maps to
        ``"darf"`` (True) or ``"concat"`` (False), which is what that switch built.
        """
        data = dict(data)
        if "darf_fusion" in data and "fusion" not in data:
            data["fusion"] = "darf" if data.pop("darf_fusion") else "concat"
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys: {unknown}")
        return cls(**data)


_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "compact": {
        "image_size": 64,
        "block": "basic",
        "layers": (1, 1, 1, 1),
        "stage_widths": (24, 48, 96, 192),
        "stem_width": 24,
        "stem_kernel": 3,
        "stem_maxpool": False,
        "shallow_window": 8,
        "shallow_heads": 2,
        "shallow_head_dim": 24,
        "deep_window": 4,
        "deep_heads": 4,
        "deep_head_dim": 32,
        "darf_heads": 4,
        "darf_head_dim": 32,
        "darf_dim": 128,
        "pit_depth": 2,
        "pit_dim": 128,
        "pit_heads": 4,
        "pit_mlp_dim": 256,
        "pit_last_layers": 2,
        "branch_dim": 128,
        "head_hidden": 128,
        "decoder_channels": (64, 32, 16),
        "decoder_scales": (2, 4, 2),
    },
    "tiny": {
        "image_size": 32,
        "block": "basic",
        "layers": (1, 1, 1, 1),
        "stage_widths": (8, 16, 24, 32),
        "stem_width": 8,
        "stem_kernel": 3,
        "stem_maxpool": False,
        "shallow_window": 4,
        "shallow_heads": 2,
        "shallow_head_dim": 8,
        "deep_window": 4,
        "deep_heads": 2,
        "deep_head_dim": 8,
        "darf_heads": 2,
        "darf_head_dim": 8,
        "darf_dim": 16,
        "pit_depth": 2,
        "pit_dim": 32,
        "pit_heads": 2,
        "pit_mlp_dim": 64,
        "pit_last_layers": 2,
        "branch_dim": 16,
        "head_hidden": 16,
        "decoder_channels": (16, 8, 8),
        "decoder_scales": (2, 4, 2),
    },
}

PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)


def preset(name: str, bits: int = 64, **overrides: Any) -> ModelConfig:
    """Named configuration with ``bits`` hash bits; ``overrides`` replace any field."""
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESET_NAMES)}")
    values = {**_PRESETS[name], "bits": bits, **overrides}
    return ModelConfig.from_dict(values)
