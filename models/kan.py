"""Kolmogorov–Arnold (KAN) layers with B-spline edges, and an MLP head with the same interface.

A KAN linear layer gives every input→output edge its own learnable 1-D function:
``phi(x) = w_base · SiLU(x) + sum_i c_i · B_i(x)``, with ``B_i`` cubic B-splines on a uniform
grid. Summing over inputs gives each output. Inputs are layer-normalised first so they fall
inside the spline grid (outside it only the SiLU base term acts).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class KANLinear(nn.Module):
    """B-spline KAN layer ``in_features → out_features`` (grid intervals, spline order)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        grid: int = 5,
        order: int = 3,
        grid_range: tuple[float, float] = (-2.0, 2.0),
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.order = in_features, out_features, order
        low, high = grid_range
        step = (high - low) / grid
        knots = low + step * torch.arange(-order, grid + order + 1, dtype=torch.float32)
        self.register_buffer("knots", knots)  # grid + 2·order + 1 knots
        self.n_basis = grid + order
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features))
        self.spline_weight = nn.Parameter(torch.empty(out_features, in_features, self.n_basis))
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))
        nn.init.trunc_normal_(self.spline_weight, std=0.1 / math.sqrt(in_features))

    def bases(self, x: Tensor) -> Tensor:
        """B-spline basis values, shape ``x.shape + (n_basis,)`` (Cox–de Boor recursion)."""
        t = self.knots
        assert isinstance(t, Tensor)
        x = x.unsqueeze(-1)
        b = ((x >= t[:-1]) & (x < t[1:])).to(x.dtype)
        for p in range(1, self.order + 1):
            left = (x - t[: -(p + 1)]) / (t[p:-1] - t[: -(p + 1)]) * b[..., :-1]
            right = (t[p + 1 :] - x) / (t[p + 1 :] - t[1:-p]) * b[..., 1:]
            b = left + right
        return b

    def forward(self, x: Tensor) -> Tensor:
        base = F.linear(F.silu(x), self.base_weight)
        spline = self.bases(x).flatten(-2)  # B × (in · n_basis)
        return base + F.linear(spline, self.spline_weight.flatten(1))


class KANHead(nn.Module):
    """LN → KAN(in→hidden) → LN → KAN(hidden→out); returns ``(hidden, out)``."""

    def __init__(self, in_dim: int, hidden: int, out: int, grid: int = 5, order: int = 3) -> None:
        super().__init__()
        self.norm_in, self.norm_hidden = nn.LayerNorm(in_dim), nn.LayerNorm(hidden)
        self.layer1 = KANLinear(in_dim, hidden, grid, order)
        self.layer2 = KANLinear(hidden, out, grid, order)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.layer1(self.norm_in(x))
        return hidden, self.layer2(self.norm_hidden(hidden))


class MLPHead(nn.Module):
    """Ablation for the KAN head: LN → Linear → GELU → Linear; returns ``(hidden, out)``."""

    def __init__(self, in_dim: int, hidden: int, out: int) -> None:
        super().__init__()
        self.norm_in = nn.LayerNorm(in_dim)
        self.layer1, self.layer2 = nn.Linear(in_dim, hidden), nn.Linear(hidden, out)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        hidden = F.gelu(self.layer1(self.norm_in(x)))
        return hidden, self.layer2(hidden)


def build_head(in_dim: int, hidden: int, out: int, kan: bool, grid: int, order: int) -> nn.Module:
    """KAN head when ``kan`` else the MLP head."""
    return KANHead(in_dim, hidden, out, grid, order) if kan else MLPHead(in_dim, hidden, out)
