"""SCH (Structure-aware Contrastive Hashing) loss, method.md §3.

Same-class pairs are pulled together in proportion to how alike their fingerprints are, and
different-class pairs are pushed apart harder the more alike they look, so codes do not
collapse onto one point per class. Code distance is the Pearson distance of real outputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from models.network import ACIROutput

_EPS = 1e-6


def class_weights(labels: Tensor, num_classes: int) -> Tensor:
    """Inverse-frequency weights ``c_k = N / (K · n_k)`` over a (training) label vector.

    Classes absent from ``labels`` get weight 0: they never occur in the split the weights
    describe, and a zero makes any accidental use visible instead of silently up-weighting.
    """
    if labels.dim() != 1 or labels.numel() == 0:
        raise ValueError("labels must be a non-empty 1-D tensor")
    counts = torch.bincount(labels.long(), minlength=num_classes).to(torch.float32)
    if counts.numel() > num_classes:
        raise ValueError(f"labels contain classes >= num_classes ({num_classes})")
    weights = labels.numel() / (num_classes * counts.clamp(min=1.0))
    return torch.where(counts > 0, weights, torch.zeros_like(weights))


def fingerprint_similarity(fingerprints: Tensor) -> Tensor:
    """Cosine similarity matrix of fingerprints, clamped at 0 (intensities are non-negative)."""
    unit = F.normalize(fingerprints.flatten(1).float(), dim=1, eps=1e-8)
    return (unit @ unit.T).clamp(min=0.0, max=1.0)


def pearson_distance(u: Tensor) -> Tensor:
    """``(1 − ρ) / 2`` for all row pairs of ``u``, clamped to [1e-6, 1 − 1e-6]."""
    centred = u - u.mean(dim=1, keepdim=True)
    unit = F.normalize(centred, dim=1, eps=1e-8)
    return ((1.0 - unit @ unit.T) / 2.0).clamp(_EPS, 1.0 - _EPS)


def sch_contrastive_loss(
    u: Tensor,
    labels: Tensor,
    fingerprints: Tensor,
    class_weight: Tensor,
    fingerprint_weighting: bool = True,
) -> Tensor:
    """Mean over the B×B batch of ``w·[y·S·(−log(1−d)) + (1−y)·exp(S)·(−log d)]``.

    With ``fingerprint_weighting=False`` every pair has ``S = 1`` (plain weighted contrastive
    hashing, the ablation).
    """
    d = pearson_distance(u)
    if fingerprint_weighting:
        s = fingerprint_similarity(fingerprints).to(u.dtype)
    else:
        s = torch.ones_like(d)
    same = (labels[:, None] == labels[None, :]).to(u.dtype)
    cw = class_weight.to(device=u.device, dtype=u.dtype)[labels]
    pair_weight = cw[:, None] * cw[None, :]
    pull = same * s * -torch.log1p(-d)
    push = (1.0 - same) * torch.exp(s) * -torch.log(d)
    return (pair_weight * (pull + push)).mean()


def _log_cosh(x: Tensor) -> Tensor:
    # Stable log(cosh x) = |x| + log(1 + exp(−2|x|)) − log 2.
    a = x.abs()
    return a + F.softplus(-2.0 * a) - math.log(2.0)


def quantization_loss(u: Tensor) -> Tensor:
    """``mean(log cosh(|u| − 1))``: pushes every output towards ±1.

    The public ACIR code correlates |u| with an all-ones vector; the centred ones vector is zero,
    so that term is a constant with no gradient. This form is zero exactly at |u| = 1.
    """
    return _log_cosh(u.abs() - 1.0).mean()


def sch_total_loss(
    out: ACIROutput,
    labels: Tensor,
    fingerprints: Tensor,
    class_weight: Tensor,
    quant_weight: float = 0.5,
    ce_weight: float = 0.5,
    fingerprint_weighting: bool = True,
) -> tuple[Tensor, dict[str, float]]:
    """``L_con + quant_weight·L_q + ce_weight·CE``; returns the total and its parts as floats."""
    contrastive = sch_contrastive_loss(
        out.u, labels, fingerprints, class_weight, fingerprint_weighting
    )
    quant = quantization_loss(out.u)
    ce = F.cross_entropy(out.logits, labels)
    total = contrastive + quant_weight * quant + ce_weight * ce
    parts = {
        "total": float(total.detach()),
        "contrastive": float(contrastive.detach()),
        "quantization": float(quant.detach()),
        "ce": float(ce.detach()),
    }
    return total, parts


# Name used in docs/architecture.md.
sch_loss = sch_total_loss
