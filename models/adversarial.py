"""FGSM and PGD attacks on the hashing output, in model-input space [0,1] under an L∞ budget.

The attack pushes the relaxed code ``tanh(u)`` away from the clean image's binary code (it
maximises the mean disagreement −b·tanh(u)), which is what would make a query retrieve the wrong
neighbours. The perturbed images are then scored by the OOD detectors like any other set.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

ATTACKS: tuple[str, ...] = ("fgsm", "pgd")
EPSILONS: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255)


def clean_codes(network: nn.Module, images: Tensor) -> Tensor:
    """±1 codes of the clean images (sign(0) → +1, as the index does)."""
    with torch.no_grad():
        u = network(images).u
    return torch.where(u >= 0, 1.0, -1.0)


def code_disagreement(u: Tensor, codes: Tensor) -> Tensor:
    """Mean of −b·tanh(u): −1 when the relaxed code equals ``codes``, +1 when fully flipped."""
    return -(torch.tanh(u) * codes).mean()


def _input_gradient(network: nn.Module, images: Tensor, codes: Tensor) -> Tensor:
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = code_disagreement(network(x).u, codes)
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def _project(x: Tensor, clean: Tensor, epsilon: float) -> Tensor:
    return torch.clamp(torch.minimum(torch.maximum(x, clean - epsilon), clean + epsilon), 0.0, 1.0)


def fgsm(network: nn.Module, images: Tensor, epsilon: float) -> Tensor:
    """One signed-gradient step of size ``epsilon``."""
    codes = clean_codes(network, images)
    step = epsilon * _input_gradient(network, images, codes).sign()
    return _project(images + step, images, epsilon).detach()


def pgd(
    network: nn.Module,
    images: Tensor,
    epsilon: float,
    steps: int = 10,
    step_size: float | None = None,
    seed: int = 0,
) -> Tensor:
    """Projected gradient ascent from a seeded uniform random start inside the budget."""
    alpha = 2.5 * epsilon / steps if step_size is None else step_size
    codes = clean_codes(network, images)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(images.shape, generator=generator, dtype=images.dtype) * 2 - 1
    x = _project(images + epsilon * noise, images, epsilon)
    for _ in range(steps):
        x = _project(x + alpha * _input_gradient(network, x, codes).sign(), images, epsilon)
    return x.detach()


def attack(
    network: nn.Module,
    images: Tensor,
    method: str,
    epsilon: float,
    batch_size: int = 64,
    seed: int = 0,
) -> Tensor:
    """Perturb preprocessed images (B×C×S×S in [0,1]) batch by batch; the network stays in eval."""
    if method not in ATTACKS:
        raise ValueError(f"unknown attack {method!r}; valid: {', '.join(ATTACKS)}")
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    network.eval()
    parts = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        if method == "fgsm":
            parts.append(fgsm(network, batch, epsilon))
        else:
            parts.append(pgd(network, batch, epsilon, seed=seed + start))
    return torch.cat(parts)


def code_flip_rate(network: nn.Module, clean: Tensor, perturbed: Tensor) -> float:
    """Share of hash bits that differ between clean and perturbed images."""
    with torch.no_grad():
        return float(
            (clean_codes(network, clean) != clean_codes(network, perturbed)).float().mean()
        )
