"""Deep-hashing baseline objectives: HashNet, DPSH, DSH and CSQ, each from its paper's definition.

Every objective has the :data:`models.training.Objective` signature
``(out, labels, fingerprints, class_weight) -> (loss, parts)`` and uses only ``out.u`` (the real
hash outputs) and ``labels``; fingerprints, class weights and the class logits are ignored. The
benchmark trains them on the same trunk as ACIR with DaRF, PiT and KAN switched off (plain CNN
trunk + MLP hash head), with the same input, epochs, optimiser and seed.

References (definitions re-derived here, no code taken from the authors):
* HashNet: Cao et al., ICCV 2017. Weighted pairwise likelihood on tanh(β·u), β raised over training.
* DPSH: Li et al., IJCAI 2016. Pairwise likelihood on θ = ½·uᵢᵀuⱼ + η·(u − sign(u))² per element.
* DSH: Liu et al., CVPR 2016. Contrastive loss with margin m = 2·bits + α‖|u| − 1‖₁.
* CSQ: Yuan et al., CVPR 2020. BCE towards per-class Hadamard (or Bernoulli) hash centres.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models.network import ACIROutput

_EPS = 1e-7


def _similarity(labels: Tensor) -> Tensor:
    """``s_ij = 1`` when labels i and j match, else 0 (float B×B)."""
    return (labels[:, None] == labels[None, :]).float()


def _off_diagonal(matrix: Tensor) -> Tensor:
    """The B·(B−1) entries off the diagonal (self-pairs carry no information)."""
    n = matrix.shape[0]
    return matrix[~torch.eye(n, dtype=torch.bool, device=matrix.device)]


class HashNetObjective:
    """HashNet: weighted maximum likelihood over pairs with continuation ``h = tanh(β·u)``.

    ``L = Σ w_ij · [log(1 + exp(α·⟨h_i,h_j⟩)) − α·s_ij·⟨h_i,h_j⟩] / Σ w_ij`` where ``w_ij``
    re-balances similar and dissimilar pairs (|S|/|S₁| and |S|/|S₀| within the batch), and
    ``β = sqrt(1 + growth · epoch / epochs)`` grows every epoch via :meth:`set_epoch`.
    ``α`` defaults to 10 / bits so the inner-product logits span [−10, 10].
    """

    def __init__(self, bits: int, alpha: float | None = None, growth: float = 15.0) -> None:
        self.alpha = alpha if alpha is not None else 10.0 / bits
        self.growth = growth
        self.beta = 1.0

    def set_epoch(self, epoch: int, total: int) -> None:
        self.beta = math.sqrt(1.0 + self.growth * epoch / max(total, 1))

    def __call__(
        self, out: ACIROutput, labels: Tensor, fingerprints: Tensor, class_weight: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        h = torch.tanh(self.beta * out.u)
        logits = _off_diagonal(self.alpha * (h @ h.T))
        s = _off_diagonal(_similarity(labels))
        n_pos = s.sum().clamp(min=1.0)
        n_neg = (1.0 - s).sum().clamp(min=1.0)
        weight = s * (s.numel() / n_pos) + (1.0 - s) * (s.numel() / n_neg)
        nll = F.softplus(logits) - s * logits  # = −log p(s | h), stable form
        loss = (weight * nll).sum() / weight.sum()
        return loss, {"total": float(loss.detach()), "beta": self.beta}


class DPSHObjective:
    """DPSH: ``−mean(s_ij·θ_ij − log(1 + e^θ_ij)) + η·mean((u − sign(u))²)``, θ = ½·uᵢᵀuⱼ.

    The quantisation term is a mean over elements (the per-code squared distance divided by the
    code length), so η weighs it the same at every code length. As a per-code sum (mean over
    codes of ‖u − sign(u)‖²) it outweighed the pair likelihood about 3:1 at the start of training
    at 64 bits; the likelihood then rose while |u| was pulled to 1, and the codes stayed near
    chance (val mAP 0.16–0.19 over 30 epochs).
    """

    def __init__(self, eta: float = 0.1) -> None:
        self.eta = eta

    def __call__(
        self, out: ACIROutput, labels: Tensor, fingerprints: Tensor, class_weight: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        u = out.u
        theta = _off_diagonal(0.5 * (u @ u.T))
        s = _off_diagonal(_similarity(labels))
        likelihood = (F.softplus(theta) - s * theta).mean()
        codes = torch.where(u >= 0, 1.0, -1.0).detach()
        quant = (u - codes).pow(2).mean()
        loss = likelihood + self.eta * quant
        parts = {
            "total": float(loss.detach()),
            "likelihood": float(likelihood.detach()),
            "quantization": float(quant.detach()),
        }
        return loss, parts


class DSHObjective:
    """DSH: ``½·s·‖u_i−u_j‖² + ½·(1−s)·max(m − ‖u_i−u_j‖², 0)`` with ``m = 2·bits``, plus
    ``α·mean_i ‖|u_i| − 1‖₁`` pulling outputs towards ±1."""

    def __init__(self, bits: int, alpha: float = 0.01) -> None:
        self.margin = 2.0 * bits
        self.alpha = alpha

    def __call__(
        self, out: ACIROutput, labels: Tensor, fingerprints: Tensor, class_weight: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        u = out.u
        sq_dist = _off_diagonal((u[:, None, :] - u[None, :, :]).pow(2).sum(dim=-1))
        s = _off_diagonal(_similarity(labels))
        contrastive = 0.5 * (s * sq_dist + (1.0 - s) * F.relu(self.margin - sq_dist)).mean()
        reg = (u.abs() - 1.0).abs().sum(dim=1).mean()
        loss = contrastive + self.alpha * reg
        parts = {
            "total": float(loss.detach()),
            "contrastive": float(contrastive.detach()),
            "regulariser": float(reg.detach()),
        }
        return loss, parts


def _sylvester_hadamard(order: int) -> np.ndarray:
    """±1 Hadamard matrix of a power-of-two order (Sylvester construction)."""
    h = np.ones((1, 1), dtype=np.float32)
    while h.shape[0] < order:
        h = np.block([[h, h], [h, -h]])
    return h


def hash_centres(num_classes: int, bits: int, seed: int = 0) -> Tensor:
    """One ±1 centre per class (CSQ).

    With a power-of-two ``bits`` and ``num_classes <= 2·bits``: rows of ``[H; −H]`` for the
    Hadamard matrix H (pairwise Hamming distance bits/2, or bits for a row and its negation).
    Otherwise: i.i.d. Bernoulli(½) bits, redrawn until all centres differ.
    """
    if bits & (bits - 1) == 0 and num_classes <= 2 * bits:
        h = _sylvester_hadamard(bits)
        return torch.from_numpy(np.concatenate([h, -h])[:num_classes].copy())
    rng = np.random.default_rng(seed)
    while True:
        centres = np.where(rng.random((num_classes, bits)) < 0.5, -1.0, 1.0).astype(np.float32)
        if len(np.unique(centres, axis=0)) == num_classes:
            return torch.from_numpy(centres)


class CSQObjective:
    """CSQ: ``mean BCE((h+1)/2, (c_y+1)/2) + λ·mean((|h| − 1)²)`` with ``h = tanh(u)``."""

    def __init__(self, num_classes: int, bits: int, lam: float = 1e-4, seed: int = 0) -> None:
        self.centres = hash_centres(num_classes, bits, seed)
        self.lam = lam

    def __call__(
        self, out: ACIROutput, labels: Tensor, fingerprints: Tensor, class_weight: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        h = torch.tanh(out.u)
        target = (self.centres.to(h.device, h.dtype)[labels] + 1.0) / 2.0
        prob = ((h + 1.0) / 2.0).clamp(_EPS, 1.0 - _EPS)
        central = F.binary_cross_entropy(prob, target)
        quant = (h.abs() - 1.0).pow(2).mean()
        loss = central + self.lam * quant
        parts = {
            "total": float(loss.detach()),
            "central": float(central.detach()),
            "quantization": float(quant.detach()),
        }
        return loss, parts


BaselineObjective = HashNetObjective | DPSHObjective | DSHObjective | CSQObjective
_FACTORIES: dict[str, Callable[[int, int], BaselineObjective]] = {
    "hashnet": lambda bits, classes: HashNetObjective(bits),
    "dpsh": lambda bits, classes: DPSHObjective(),
    "dsh": lambda bits, classes: DSHObjective(bits),
    "csq": lambda bits, classes: CSQObjective(classes, bits),
}
BASELINE_NAMES: tuple[str, ...] = tuple(_FACTORIES)

# The trunk every baseline trains: the ACIR network without DaRF fusion, PiT or KAN head.
BASELINE_TRUNK: dict[str, bool] = {"darf_fusion": False, "use_pit": False, "kan_head": False}


def make_objective(name: str, bits: int, num_classes: int) -> BaselineObjective:
    """A fresh baseline objective by (lower-case) name; see :data:`BASELINE_NAMES`."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown baseline {name!r}; valid: {', '.join(BASELINE_NAMES)}")
    return _FACTORIES[name](bits, num_classes)
