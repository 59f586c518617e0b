"""FGSM / PGD on the hashing output: budget, range, and that the codes actually move."""

from __future__ import annotations

import pytest
import torch

from models.adversarial import attack, clean_codes, code_disagreement, code_flip_rate
from models.config import preset
from models.network import ACIRNet

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def network() -> ACIRNet:
    torch.manual_seed(0)
    return ACIRNet(preset("tiny", bits=16), num_classes=3).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
@pytest.mark.parametrize("epsilon", [2 / 255, 8 / 255])
def test_attack_respects_budget_and_range(
    network: ACIRNet, images: torch.Tensor, method: str, epsilon: float
) -> None:
    perturbed = attack(network, images, method, epsilon, batch_size=4)
    assert perturbed.shape == images.shape and not perturbed.requires_grad
    assert (perturbed - images).abs().max() <= epsilon + 1e-6
    assert perturbed.min() >= 0.0 and perturbed.max() <= 1.0
    assert (perturbed != images).any()


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_attack_pushes_codes_away(network: ACIRNet, images: torch.Tensor, method: str) -> None:
    perturbed = attack(network, images, method, 8 / 255)
    codes = clean_codes(network, images)
    with torch.no_grad():
        before = code_disagreement(network(images).u, codes)
        after = code_disagreement(network(perturbed).u, codes)
    assert after > before
    assert code_flip_rate(network, images, perturbed) > 0.0


def test_pgd_is_seeded(network: ACIRNet, images: torch.Tensor) -> None:
    first = attack(network, images[:2], "pgd", 4 / 255, seed=3)
    assert torch.equal(first, attack(network, images[:2], "pgd", 4 / 255, seed=3))


def test_unknown_attack_and_negative_budget_are_refused(
    network: ACIRNet, images: torch.Tensor
) -> None:
    with pytest.raises(ValueError, match="unknown attack"):
        attack(network, images, "cw", 0.1)
    with pytest.raises(ValueError, match="epsilon"):
        attack(network, images, "fgsm", -0.1)
