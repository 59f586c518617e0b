"""Windowed 2-D self-attention with relative-position bias, and DaRF fusion.

* :class:`WindowAttention2d` runs multi-head self-attention inside non-overlapping square
  windows of a feature map (1×1-conv projections, a learned bias per relative offset and head)
  and adds the result to its input.
* :class:`DaRFFusion` aligns the shallow and deep maps (BN → ReLU → adaptive average pool to
  the deep map's size) and lets shallow positions query the deep map (cross-attention),
  followed by a 1×1-conv projection and global average pooling.
* :class:`PooledFusion` is the ablation stand-in with the same output width (both maps, pooled
  and concatenated, no cross-attention).
* :class:`DeepPooling` uses the deep map alone (no fusion), as the hashing baselines of the
  literature do with their backbone's last feature map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _relative_index(window: int, table_side: int) -> Tensor:
    """[n, n] indices into a (table_side × table_side) bias table for an n = window² window."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ).flatten(1)  # 2 × n
    rel = coords[:, :, None] - coords[:, None, :] + (table_side - 1) // 2  # 2 × n × n
    return rel[0] * table_side + rel[1]


class WindowAttention2d(nn.Module):
    """Residual windowed MHSA: ``x + proj(attn(x))``.

    The window is ``min(window, H, W)`` at run time; maps whose sides are not a multiple of the
    window are zero-padded and the padded keys are masked out.
    """

    def __init__(self, channels: int, heads: int, head_dim: int, window: int) -> None:
        super().__init__()
        self.heads, self.head_dim, self.window = heads, head_dim, window
        inner = heads * head_dim
        self.qkv = nn.Conv2d(channels, 3 * inner, 1)
        self.proj = nn.Conv2d(inner, channels, 1)
        side = 2 * window - 1
        self.bias_table = nn.Parameter(torch.zeros(heads, side * side))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("full_index", _relative_index(window, side), persistent=False)

    def _bias(self, window: int) -> Tensor:
        index = self.full_index
        if window != self.window:
            index = _relative_index(window, 2 * self.window - 1).to(self.bias_table.device)
        assert isinstance(index, Tensor)
        return self.bias_table[:, index]  # heads × n × n

    def _key_mask(
        self, h: int, w: int, hp: int, wp: int, window: int, device: torch.device
    ) -> Tensor:
        """Additive mask [windows, 1, 1, n] that hides zero-padded key positions."""
        valid = torch.zeros(hp, wp, dtype=torch.bool, device=device)
        valid[:h, :w] = True
        valid = valid.view(hp // window, window, wp // window, window).permute(0, 2, 1, 3)
        valid = valid.reshape(-1, 1, 1, window * window)
        zero = torch.zeros((), device=device)
        return torch.where(valid, zero, torch.full((), float("-inf"), device=device))

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        win = min(self.window, h, w)
        hp, wp = -(-h // win) * win, -(-w // win) * win
        qkv = self.qkv(x)
        if (hp, wp) != (h, w):
            qkv = F.pad(qkv, (0, wp - w, 0, hp - h))
        nh, nw, n = hp // win, wp // win, win * win
        qkv = qkv.view(b, 3, self.heads, self.head_dim, nh, win, nw, win)
        qkv = qkv.permute(1, 0, 4, 6, 2, 5, 7, 3).reshape(3, b * nh * nw, self.heads, n, -1)
        mask = self._bias(win).unsqueeze(0)  # 1 × heads × n × n
        if (hp, wp) != (h, w):
            key_mask = self._key_mask(h, w, hp, wp, win, x.device)  # windows × 1 × 1 × n
            mask = (mask.unsqueeze(0) + key_mask.unsqueeze(0)).expand(b, -1, -1, -1, -1)
            mask = mask.reshape(b * nh * nw, self.heads, n, n)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask)
        out = out.view(b, nh, nw, self.heads, win, win, self.head_dim)
        out = out.permute(0, 3, 6, 1, 4, 2, 5).reshape(b, -1, hp, wp)[:, :, :h, :w]
        return x + self.proj(out)


class _Align(nn.Module):
    """BatchNorm → ReLU; pooling to the target size happens in the caller."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        return F.adaptive_avg_pool2d(F.relu(self.norm(x)), size)


class DaRFFusion(nn.Module):
    """Cross-attention from the shallow map (queries) to the deep map (keys, values) → B×out."""

    def __init__(self, c_shallow: int, c_deep: int, heads: int, head_dim: int, out: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.align_s, self.align_d = _Align(c_shallow), _Align(c_deep)
        self.q = nn.Conv2d(c_shallow, inner, 1)
        self.kv = nn.Conv2d(c_deep, 2 * inner, 1)
        self.proj = nn.Conv2d(inner, out, 1)

    def forward(self, shallow: Tensor, deep: Tensor) -> Tensor:
        b, _, h, w = deep.shape
        s, d = self.align_s(shallow, (h, w)), self.align_d(deep, (h, w))
        q = self.q(s).view(b, self.heads, self.head_dim, h * w).transpose(2, 3)
        kv = self.kv(d).view(b, 2, self.heads, self.head_dim, h * w).transpose(3, 4)
        out = F.scaled_dot_product_attention(q, kv[:, 0], kv[:, 1])  # b × heads × hw × dim
        out = out.transpose(2, 3).reshape(b, -1, h, w)
        # The 1×1 projection is linear, so pooling first gives the same result, cheaper.
        return self.proj(out.mean(dim=(2, 3), keepdim=True)).flatten(1)


class PooledFusion(nn.Module):
    """Ablation for DaRF: concat of the pooled aligned maps → Linear, same output width."""

    def __init__(self, c_shallow: int, c_deep: int, out: int) -> None:
        super().__init__()
        self.align_s, self.align_d = _Align(c_shallow), _Align(c_deep)
        self.linear = nn.Linear(c_shallow + c_deep, out)

    def forward(self, shallow: Tensor, deep: Tensor) -> Tensor:
        s = self.align_s(shallow, (1, 1)).flatten(1)
        d = self.align_d(deep, (1, 1)).flatten(1)
        return self.linear(torch.cat([s, d], dim=1))


class DeepPooling(nn.Module):
    """No fusion: the aligned, pooled deep map → Linear, same output width; ignores ``shallow``."""

    def __init__(self, c_deep: int, out: int) -> None:
        super().__init__()
        self.align_d = _Align(c_deep)
        self.linear = nn.Linear(c_deep, out)

    def forward(self, shallow: Tensor, deep: Tensor) -> Tensor:
        return self.linear(self.align_d(deep, (1, 1)).flatten(1))
