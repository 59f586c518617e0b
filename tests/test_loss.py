"""SCH loss on hand-made cases, and a short optimisation of the tiny network."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.config import preset
from models.loss import (
    class_weights,
    pearson_distance,
    quantization_loss,
    sch_contrastive_loss,
    sch_total_loss,
)
from models.network import ACIRNet

torch.set_num_threads(1)

U_PAIR = [[0.9, -0.2, 0.5, -1.0, 0.3, 0.8, -0.6, 0.1], [0.2, 0.7, -0.9, -0.4, 1.0, -0.3, 0.6, -0.8]]
SIMILAR = [[1.0, 0.9, 0.8, 0.7], [0.9, 1.0, 0.7, 0.8]]
DISSIMILAR = [[1.0, 0.0, 0.1, 0.0], [0.0, 1.0, 0.0, 0.2]]


def _loss_and_grad(labels: list[int], prints: list[list[float]]) -> tuple[float, float]:
    u = torch.tensor(U_PAIR, requires_grad=True)
    loss = sch_contrastive_loss(u, torch.tensor(labels), torch.tensor(prints), torch.ones(2))
    loss.backward()
    assert u.grad is not None
    return float(loss.detach()), float(u.grad.norm())


def test_class_weights_inverse_frequency() -> None:
    weights = class_weights(torch.tensor([0, 0, 0, 1]), num_classes=3)
    assert torch.allclose(weights, torch.tensor([4 / 9, 4 / 3, 0.0]))


def test_same_class_pair_with_dissimilar_fingerprints_is_pulled_less() -> None:
    loss_sim, grad_sim = _loss_and_grad([0, 0], SIMILAR)
    loss_dis, grad_dis = _loss_and_grad([0, 0], DISSIMILAR)
    assert loss_dis < loss_sim and grad_dis < grad_sim


def test_different_class_look_alikes_are_pushed_harder() -> None:
    loss_sim, grad_sim = _loss_and_grad([0, 1], SIMILAR)
    loss_dis, grad_dis = _loss_and_grad([0, 1], DISSIMILAR)
    assert loss_sim > loss_dis and grad_sim > grad_dis


def test_without_fingerprint_weighting_every_pair_has_unit_similarity() -> None:
    u, labels = torch.tensor(U_PAIR * 2), torch.tensor([0, 0, 1, 1])
    identical = torch.ones(4, 4)  # cosine 1 for every pair
    plain = sch_contrastive_loss(u, labels, torch.rand(4, 4), torch.ones(2), False)
    assert torch.allclose(plain, sch_contrastive_loss(u, labels, identical, torch.ones(2)))


def test_class_weights_scale_pairs() -> None:
    u, labels, prints = torch.tensor(U_PAIR), torch.tensor([0, 1]), torch.tensor(SIMILAR)
    base = sch_contrastive_loss(u, labels, prints, torch.ones(2))
    scaled = sch_contrastive_loss(u, labels, prints, torch.tensor([2.0, 3.0]))
    assert torch.allclose(scaled, 6.0 * base)


def test_pearson_distance_is_scale_invariant_and_clamped() -> None:
    u = torch.tensor(U_PAIR)
    d = pearson_distance(u)
    assert torch.allclose(d, pearson_distance(torch.stack([3.0 * u[0] + 1.0, u[1]])), atol=1e-6)
    assert float(d.min()) >= 0.99e-6 and float(d.max()) <= 1 - 0.99e-6
    assert float(d[0, 0]) == pytest.approx(1e-6)


def test_quantization_loss_zero_at_unit_magnitude_with_gradient_elsewhere() -> None:
    assert float(quantization_loss(torch.tensor([[1.0, -1.0, 1.0]]))) == pytest.approx(
        0.0, abs=1e-7
    )
    u = torch.tensor([[0.3, -1.7, 2.0, -0.5]], requires_grad=True)
    loss = quantization_loss(u)
    loss.backward()
    assert float(loss.detach()) > 0
    assert u.grad is not None and bool((u.grad.abs() > 1e-4).all())


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(16, 3, 32, 32, generator=gen)
    labels = torch.arange(16) % 4
    images[:, :, : 8 * 1] += labels.view(-1, 1, 1, 1) * 0.2  # class-dependent band
    images = images.clamp(0, 1)
    prints = F.adaptive_avg_pool2d(images.mean(1, keepdim=True), 8).flatten(1)
    return images, labels, prints


def test_total_loss_parts_and_a_few_steps_reduce_it() -> None:
    torch.manual_seed(0)
    net = ACIRNet(preset("tiny", bits=16, pit_dropout=0.0), num_classes=4)
    images, labels, prints = _batch()
    weights = class_weights(labels, 4)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    history: list[float] = []
    for _ in range(12):
        total, parts = sch_total_loss(net(images), labels, prints, weights)
        expected = parts["contrastive"] + 0.5 * parts["quantization"] + 0.5 * parts["ce"]
        assert parts["total"] == pytest.approx(expected, rel=1e-5)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        history.append(parts["total"])
    assert history[-1] < 0.8 * history[0]
