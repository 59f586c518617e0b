"""Pixel transformer (PiT) over the layer4 map, with global and local output branches.

Every pixel of ``x4`` is a token (patch size 1). Tokens are embedded (LayerNorm → Linear →
LayerNorm), a [cls] token and learned position embeddings are added, and pre-norm transformer
blocks follow. The outputs of the last N blocks feed two branches:

* global: the N [cls] tokens, concatenated → Linear → ``branch_dim``;
* local: the N pixel-token maps, concatenated on channels → 1×1 conv → ``branch_dim`` → GAP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import ModelConfig


class SelfAttention(nn.Module):
    """Multi-head self-attention over a token sequence."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, dim = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=p)
        return self.proj(out.transpose(1, 2).reshape(b, n, dim))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + Drop(Attn(LN x)); x + Drop(MLP(LN x))."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


class PixelTransformer(nn.Module):
    """PiT on raw ``x4``; ``forward`` returns ``(global_branch, local_branch)``, each B×branch."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        dim, used = config.pit_dim, config.pit_layers_used
        self.used = used
        self.embed = nn.Sequential(
            nn.LayerNorm(config.c4), nn.Linear(config.c4, dim), nn.LayerNorm(dim)
        )
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, config.x4_size**2 + 1, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.cls, std=0.02)
        self.drop = nn.Dropout(config.pit_dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, config.pit_heads, config.pit_mlp_dim, config.pit_dropout)
            for _ in range(config.pit_depth)
        )
        self.norm = nn.LayerNorm(dim)  # shared final norm applied to each collected layer
        self.global_head = nn.Linear(used * dim, config.branch_dim)
        # The local branch's 1×1 conv followed by GAP equals GAP followed by this Linear.
        self.local_head = nn.Linear(used * dim, config.branch_dim)

    def forward(self, x4: Tensor) -> tuple[Tensor, Tensor]:
        tokens = self.embed(x4.flatten(2).transpose(1, 2))  # B × hw × dim
        if tokens.shape[1] + 1 != self.pos.shape[1]:
            raise ValueError(f"PiT expects {self.pos.shape[1] - 1} tokens, got {tokens.shape[1]}")
        x = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        x = self.drop(x + self.pos)
        collected: list[Tensor] = []
        first_used = len(self.blocks) - self.used
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index >= first_used:
                collected.append(self.norm(x))
        stacked = torch.cat(collected, dim=2)  # B × (1+hw) × (used·dim)
        global_branch = self.global_head(stacked[:, 0])
        local_branch = self.local_head(stacked[:, 1:].mean(dim=1))
        return global_branch, local_branch
