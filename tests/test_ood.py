"""OOD detectors, state, calibration and the evaluation metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint, new_checkpoint, save_checkpoint
from models.config import preset
from models.data.ood_sets import BENIGN_KINDS
from models.decoder import ReconstructionDecoder
from models.network import ACIRNet
from models.ood import (
    COMBINABLE,
    COMBINED_MEMBERS,
    DETECTORS,
    OODInputs,
    OODState,
    calibrate_on_sets,
    calibrate_threshold,
    collect_inputs,
    detector_scores,
    energy_score,
    fit_combined,
    fit_ood_state,
    forward_with_squeeze,
    knn_score,
    mahalanobis_score,
    median3x3,
    msp_score,
    needs_squeeze,
    scores_from_inputs,
    squeeze_distance,
    squeeze_images,
    state_from_inputs,
)
from models.ood_eval import auroc, fpr_at_tpr, ood_report_markdown, rejection_rate
from models.ood_moments import channel_moments, fit_gaussian, input_statistics, min_mahalanobis

torch.set_num_threads(1)


# ---------------------------------------------------------------- metrics


def test_auroc_hand_examples() -> None:
    assert auroc(np.array([0.1, 0.2, 0.3]), np.array([0.4, 0.5])) == 1.0
    assert auroc(np.array([0.4, 0.5]), np.array([0.1, 0.2, 0.3])) == 0.0
    # one OOD score above 0.1, tied with 0.2 (half), below 0.3: (1 + 0.5 + 0) / 3
    assert auroc(np.array([0.1, 0.2, 0.3]), np.array([0.2])) == pytest.approx(0.5)
    assert auroc(np.array([1.0, 3.0]), np.array([2.0, 4.0])) == pytest.approx(0.75)


def test_auroc_matches_pairwise_count_with_ties() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 40).astype(float), rng.integers(1, 6, 30).astype(float)
    pairs = (b[None, :] > a[:, None]).mean() + 0.5 * (b[None, :] == a[:, None]).mean()
    assert auroc(a, b) == pytest.approx(pairs)


def test_fpr_at_95_tpr_hand_example() -> None:
    in_scores = np.array([0.1, 0.2, 0.3, 0.4])
    # flagging all 4 OOD scores (95% of 4 rounds up to 4) needs t = 0.25: 0.3, 0.4 flagged
    assert fpr_at_tpr(in_scores, np.array([0.25, 0.35, 0.5, 0.6])) == 0.5
    assert fpr_at_tpr(in_scores, np.array([0.5, 0.6])) == 0.0
    assert fpr_at_tpr(in_scores, np.array([0.05])) == 1.0


def test_calibrate_on_sets_keeps_the_target_on_every_set() -> None:
    rng = np.random.default_rng(0)
    typical, shifted = rng.normal(0, 1, 400), rng.normal(0.8, 1, 2000)
    threshold = calibrate_on_sets([typical, shifted], 0.05)
    assert rejection_rate(typical, threshold) <= 0.05
    assert rejection_rate(shifted, threshold) == pytest.approx(0.05, abs=1e-9)
    # A pooled quantile would let the larger, shifted set dominate; per-set is never below it.
    assert threshold == max(calibrate_threshold(s, 0.05) for s in (typical, shifted))
    assert calibrate_on_sets([typical], 0.05) == calibrate_threshold(typical, 0.05)
    with pytest.raises(ValueError):
        calibrate_on_sets([], 0.05)


def test_calibrate_threshold_hits_target_rate() -> None:
    scores = np.arange(1, 101, dtype=float)
    threshold = calibrate_threshold(scores, 0.05)
    assert threshold == 95.0
    assert rejection_rate(scores, threshold) == pytest.approx(0.05)
    assert rejection_rate(scores, calibrate_threshold(scores, 0.0)) == 0.0
    shuffled = np.random.default_rng(1).permutation(np.linspace(0, 1, 1000))
    assert rejection_rate(shuffled, calibrate_threshold(shuffled, 0.03)) == pytest.approx(0.03)


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_calibrate_threshold_rejects_bad_rates(bad: float) -> None:
    with pytest.raises(ValueError, match="target_fpr"):
        calibrate_threshold(np.ones(5), bad)


# ---------------------------------------------------------------- state


def test_state_dict_round_trip() -> None:
    stats = {"maha_means": np.ones((2, 3), np.float32), "knn_k": np.asarray(4)}
    state = OODState("knn", threshold=0.25, target_fpr=0.03, stats=stats)
    back = OODState.from_dict(state.to_dict())
    assert (back.detector, back.threshold, back.target_fpr) == ("knn", 0.25, 0.03)
    assert set(back.stats) == set(stats)
    np.testing.assert_array_equal(back.stats["maha_means"], stats["maha_means"])
    assert OODState.from_dict(OODState().to_dict()).threshold == math.inf


def test_unknown_detector_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown OOD detector"):
        OODState(detector="hamming")


# ---------------------------------------------------------------- detectors on synthetic inputs


def test_energy_and_msp_hand_values() -> None:
    flat, sharp = [0.0, 0.0], [10.0, 0.0]
    assert energy_score(np.array([flat]))[0] == pytest.approx(-math.log(2))
    assert msp_score(np.array([flat]))[0] == pytest.approx(-0.5)
    assert msp_score(np.array([sharp]))[0] < msp_score(np.array([flat]))[0]
    assert energy_score(np.array([sharp]))[0] < energy_score(np.array([flat]))[0]


def _clustered_inputs(rng: np.random.Generator, n: int, shift: float) -> OODInputs:
    """Two feature clusters (ID); ``shift`` > 0 moves the features off both and flattens logits."""
    labels = np.arange(n) % 2
    centres = np.array([[4.0, 0, 0, 0, 0, 0], [0, 4.0, 0, 0, 0, 0]])
    feature = centres[labels] + rng.normal(0, 0.3, (n, 6))
    feature[:, 2] += shift
    logits = np.eye(2)[labels] * (6.0 - shift) if shift < 6 else np.zeros((n, 2))
    error = rng.uniform(0.01, 0.02, n) + shift * 0.05
    return OODInputs(
        feature.astype(np.float32), logits.astype(np.float32), error.astype(np.float32)
    )


def test_every_detector_ranks_shifted_inputs_higher() -> None:
    rng = np.random.default_rng(0)
    train, val = _clustered_inputs(rng, 200, 0.0), _clustered_inputs(rng, 100, 0.0)
    state = state_from_inputs(train, val, "combined", 0.05, np.arange(200) % 2)
    in_dist, shifted = _clustered_inputs(rng, 50, 0.0), _clustered_inputs(rng, 50, 5.0)
    for name in DETECTORS:
        a, b = scores_from_inputs(state, in_dist, name), scores_from_inputs(state, shifted, name)
        assert a.dtype == np.float32 and a.shape == (50,)
        assert auroc(a, b) > 0.99, name


def test_combined_is_the_max_of_standardised_members() -> None:
    rng = np.random.default_rng(0)
    val = _clustered_inputs(rng, 60, 0)
    state = state_from_inputs(_clustered_inputs(rng, 100, 0), val)
    members = ("reconstruction", "mahalanobis", "knn")
    state.stats.update(fit_combined(state.stats, val, members, "max"))
    probe = _clustered_inputs(rng, 10, 2.0)
    z = [
        (scores_from_inputs(state, probe, COMBINABLE[i]) - m) / s
        for i, m, s in zip(
            state.stats["combined_members"],
            state.stats["combined_mean"],
            state.stats["combined_std"],
            strict=True,
        )
    ]
    np.testing.assert_allclose(
        scores_from_inputs(state, probe, "combined"), np.max(z, axis=0), 1e-5
    )


def test_unfitted_feature_detector_says_so() -> None:
    probe = _clustered_inputs(np.random.default_rng(0), 4, 0.0)
    with pytest.raises(ValueError, match="not fitted"):
        scores_from_inputs(OODState("mahalanobis"), probe)


# ---------------------------------------------------------------- detectors through the network


def _smooth_images(n: int, seed: int) -> torch.Tensor:
    """Low-frequency images in [0,1] (the in-distribution stand-in)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, 4, 4, generator=g)
    image = torch.nn.functional.interpolate(coarse, size=32, mode="bilinear", align_corners=False)
    return image.expand(-1, 3, -1, -1).contiguous()


def _checkerboards(n: int) -> torch.Tensor:
    board = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float()
    return board.expand(n, 3, 32, 32).contiguous()


@pytest.fixture(scope="module")
def tiny_model() -> tuple[ACIRNet, ReconstructionDecoder]:
    torch.manual_seed(0)
    config = preset("tiny", bits=16)
    return ACIRNet(config, num_classes=3).eval(), ReconstructionDecoder(config).eval()


# kNN and the logit detectors need trained features; the synthetic test above covers them.
@pytest.mark.parametrize("detector", ["reconstruction", "mahalanobis", "combined"])
def test_network_detectors_flag_checkerboards(
    tiny_model: tuple[ACIRNet, ReconstructionDecoder], detector: str
) -> None:
    network, decoder = tiny_model
    state = fit_ood_state(network, decoder, _smooth_images(300, 0), _smooth_images(40, 1), detector)
    assert state.detector == detector and math.isfinite(state.threshold)
    clean, odd = _smooth_images(16, 2), _checkerboards(4)
    assert needs_squeeze(state) == (detector == "combined")
    scores = []
    with torch.inference_mode():
        for x in (clean, odd):
            out, squeeze = forward_with_squeeze(network, x, needs_squeeze(state))
            scores.append(detector_scores(state, x, out, decoder, squeeze=squeeze))
    in_scores, ood_scores = scores
    assert in_scores.shape == (16,) and in_scores.dtype == np.float32
    assert ood_scores.min() > in_scores.max()
    assert (ood_scores > state.threshold).all()


def test_reconstruction_without_decoder_is_an_error(
    tiny_model: tuple[ACIRNet, ReconstructionDecoder],
) -> None:
    network, _ = tiny_model
    images = _smooth_images(2, 0)
    with torch.inference_mode(), pytest.raises(ValueError, match="decoder"):
        detector_scores(OODState("reconstruction"), images, network(images), None)


def test_markdown_report_has_a_row_per_set() -> None:
    metrics = {"auroc": 0.9, "fpr_at_95_tpr": 0.2, "rejected": 0.5}
    report = {
        "shipped_detector": "knn",
        "shipped_threshold": 0.1,
        "target_fpr": 0.05,
        "counts": {"query": 3, "far": 2},
        "thresholds": {"knn": 0.1, "msp": -0.4},
        "false_rejection": {"query": {"knn": 0.05, "msp": 0.04}},
        "ood": {"far": {"knn": metrics, "msp": metrics}},
    }
    text = ood_report_markdown(report)
    assert "| far | 0.900 | 0.900 |" in text
    assert "| query | 5.0% | 4.0% |" in text


# ---------------------------------------------------------------- end to end


def test_evaluate_ood_reports_every_set_and_detector(small_atlas: Path) -> None:
    from models.checkpoint import new_checkpoint
    from models.data.manifest import load_split
    from models.ood_eval import evaluate_ood, refit_ood

    pytest.importorskip("skimage", reason="the far-OOD set needs scikit-image (dev dependency)")
    pytest.importorskip("sklearn", reason="the far-OOD set needs scikit-learn (dev dependency)")
    ckpt = new_checkpoint(preset("tiny", bits=16), load_split(small_atlas, "train").class_names)
    ckpt.ood = refit_ood(ckpt, small_atlas, "knn", target_fpr=0.1)
    report = evaluate_ood(ckpt, small_atlas, max_per_set=12, attack_count=3, epsilons=(8 / 255,))
    json.dumps(report)  # the CLI writes it as JSON
    assert report["stats_source"] == "checkpoint"
    assert report["thresholds"]["knn"] == ckpt.ood.threshold
    assert set(report["ood"]) == {"far", "near", "macaque", "fgsm@8/255", "pgd@8/255"}
    assert set(report["false_rejection"]) == {"query"} | {f"benign:{k}" for k in BENIGN_KINDS}
    assert report["counts"]["far"] == 12 and report["counts"]["pgd@8/255"] == 3
    for per_detector in report["ood"].values():
        assert set(per_detector) == set(DETECTORS)
        for metrics in per_detector.values():
            assert all(0.0 <= metrics[k] <= 1.0 for k in ("auroc", "fpr_at_95_tpr", "rejected"))
    assert "| macaque |" in ood_report_markdown(report)


# ---------------------------------------------------------------- summary-statistic Gaussians


def test_gaussian_fit_and_distance_by_hand() -> None:
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    means, precision = fit_gaussian(x, shrinkage=0.0)
    np.testing.assert_allclose(means, [[0.0, 0.0]], atol=1e-7)
    np.testing.assert_allclose(precision, np.diag([1.5, 0.375]), rtol=1e-6)
    two = np.array([[0.0, 0.0], [10.0, 0.0]], dtype=np.float32)
    probe = np.array([[1.0, 0.0], [9.0, 0.0], [5.0, 0.0]])
    np.testing.assert_allclose(min_mahalanobis(probe, two, np.eye(2, dtype=np.float32)), [1, 1, 25])


def test_summary_statistics_shapes_and_values() -> None:
    deep = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 2, 2)
    moments = channel_moments(deep)
    assert moments.shape == (2, 6)
    np.testing.assert_allclose(moments[0, :3], [1.5, 5.5, 9.5])
    flat = torch.full((1, 3, 8, 8), 0.02)
    stats = input_statistics(flat)
    assert stats.shape == (1, 8)
    np.testing.assert_allclose(stats[0], [0.02, 0, 0, 0, 1, 0, 0.02, 0.02], atol=1e-6)


def test_sum_rule_adds_standardised_members() -> None:
    rng = np.random.default_rng(0)
    train, val = _clustered_inputs(rng, 100, 0), _clustered_inputs(rng, 60, 0)
    state = state_from_inputs(train, val)
    state.stats.update(fit_combined(state.stats, val, ("mahalanobis", "energy"), "sum"))
    probe = _clustered_inputs(rng, 10, 2.0)
    expected = sum(
        (scores_from_inputs(state, probe, name) - state.stats["combined_mean"][j])
        / state.stats["combined_std"][j]
        for j, name in enumerate(("mahalanobis", "energy"))
    )
    np.testing.assert_allclose(scores_from_inputs(state, probe, "combined"), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="bad combination"):
        fit_combined(state.stats, val, ("mahalanobis",), "median")


def test_stale_statistics_are_refused() -> None:
    rng = np.random.default_rng(0)
    probe = _clustered_inputs(rng, 4, 0.0)
    state = state_from_inputs(_clustered_inputs(rng, 40, 0), _clustered_inputs(rng, 20, 0))
    assert scores_from_inputs(state, probe, "knn").shape == (4,)
    del state.stats["stats_version"]  # as written before versioning
    with pytest.raises(ValueError, match="refit"):
        scores_from_inputs(state, probe, "knn")
    assert scores_from_inputs(state, probe, "energy").shape == (4,)  # reads no statistics


# ---------------------------------------------------------------- feature squeezing


def _high_frequency(images: torch.Tensor, amplitude: float = 0.1) -> torch.Tensor:
    """``images`` plus a ±amplitude checkerboard (a stand-in for an adversarial perturbation)."""
    sign = 2 * _checkerboards(1)[:, :, : images.shape[2], : images.shape[3]] - 1
    return (images + amplitude * sign).clamp(0, 1)


def test_squeezing_keeps_smooth_images_and_removes_high_frequencies() -> None:
    flat = torch.full((1, 3, 8, 8), 0.3)
    torch.testing.assert_close(squeeze_images(flat), flat)
    # a checkerboard survives the 3×3 median (5 of 9 agree with the centre); the 2×2 mean then
    # averages it to 0.5 (away from the replicated borders)
    assert squeeze_images(_checkerboards(1))[..., 2:-2, 2:-2].eq(0.5).all()
    smooth = _smooth_images(8, 2)
    assert squeeze_images(smooth).shape == smooth.shape
    assert (squeeze_images(smooth) - smooth).abs().mean() < 0.03
    noisy = _high_frequency(smooth)
    assert (squeeze_images(noisy) - noisy).abs().mean() > 0.08


@pytest.mark.parametrize("levels", [3, 1000])  # few levels: many ties in the windows
def test_median3x3_matches_a_sorted_window_median(levels: int) -> None:
    images = torch.randint(0, levels, (2, 3, 9, 13), generator=torch.Generator().manual_seed(0))
    images = images.float() / levels
    windows = torch.nn.functional.pad(images, (1, 1, 1, 1), mode="replicate")
    windows = windows.unfold(2, 3, 1).unfold(3, 3, 1).flatten(-2)
    assert torch.equal(median3x3(images), windows.median(dim=-1).values)


def test_squeeze_distance_rises_with_a_high_frequency_perturbation(
    tiny_model: tuple[ACIRNet, ReconstructionDecoder],
) -> None:
    network, _ = tiny_model
    clean = _smooth_images(16, 2)
    with torch.inference_mode():
        _, smooth = forward_with_squeeze(network, clean, True)
        _, perturbed = forward_with_squeeze(network, _high_frequency(clean), True)
    assert smooth is not None and perturbed is not None
    assert smooth.shape == (16,) and smooth.dtype == np.float32 and (smooth >= -1e-6).all()
    assert perturbed.mean() > 2 * smooth.mean()
    assert (perturbed > smooth).mean() > 0.75


def test_forward_with_squeeze_matches_separate_passes(
    tiny_model: tuple[ACIRNet, ReconstructionDecoder],
) -> None:
    network, _ = tiny_model
    images = _smooth_images(5, 3)
    with torch.inference_mode():
        out, distances = forward_with_squeeze(network, images, True)
        alone, squeezed = network(images), network(squeeze_images(images))
        plain, none = forward_with_squeeze(network, images, False)
    assert none is None and len(out.u) == 5
    for got, want in zip(out, alone, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(plain.u, alone.u)
    assert distances is not None
    np.testing.assert_allclose(
        distances, squeeze_distance(alone.feature, squeezed.feature), rtol=1e-3, atol=1e-6
    )
    np.testing.assert_allclose(squeeze_distance(alone.feature, alone.feature), 0.0, atol=1e-6)


def test_squeeze_member_is_fitted_stored_and_required(
    tiny_model: tuple[ACIRNet, ReconstructionDecoder],
) -> None:
    network, _ = tiny_model
    assert "squeeze" in COMBINED_MEMBERS
    state = fit_ood_state(network, None, _smooth_images(200, 0), _smooth_images(40, 1))
    members = [COMBINABLE[i] for i in state.stats["combined_members"]]
    assert "squeeze" in members and needs_squeeze(state)
    assert not needs_squeeze(state, "mahalanobis")
    back = OODState.from_dict(state.to_dict())
    assert needs_squeeze(back)
    clean = _smooth_images(8, 2)
    with torch.inference_mode():
        out, squeeze = forward_with_squeeze(network, clean, True)
        np.testing.assert_array_equal(
            detector_scores(back, clean, out, None, squeeze=squeeze),
            detector_scores(state, clean, out, None, squeeze=squeeze),
        )
        with pytest.raises(ValueError, match="squeeze distances were not collected"):
            detector_scores(state, clean, out, None)
        # a gate fitted before the member existed (its stored members lack it) still scores
        # from one plain forward pass
        val = collect_inputs(network, None, _smooth_images(40, 1), squeeze=False)
        state.stats.update(fit_combined(state.stats, val))
        assert "squeeze" not in [COMBINABLE[i] for i in state.stats["combined_members"]]
        assert not needs_squeeze(state)
        assert detector_scores(state, clean, network(clean), None).shape == (8,)


# ---------------------------------------------------------------- shallow-map moments


def test_shallow_moments_member_is_fitted_stored_and_scored(
    tiny_model: tuple[ACIRNet, ReconstructionDecoder], tmp_path: Path
) -> None:
    network, _ = tiny_model
    assert "shallow_moments" in COMBINED_MEMBERS
    train_labels = np.arange(200) % 3
    state = fit_ood_state(
        network, None, _smooth_images(200, 0), _smooth_images(40, 1), train_labels=train_labels
    )
    assert "shallow_moments" in [COMBINABLE[i] for i in state.stats["combined_members"]]
    c2 = network.config.c2
    assert state.stats["shallow_moments_mean"].shape == (3, 2 * c2)  # one mean per class
    assert state.stats["shallow_moments_precision"].shape == (2 * c2, 2 * c2)
    clean, odd = _smooth_images(8, 2), _checkerboards(4)
    probe = collect_inputs(network, None, torch.cat([clean, odd]))
    assert probe.shallow_moments is not None and probe.shallow_moments.shape == (12, 2 * c2)
    member = min_mahalanobis(
        probe.shallow_moments,
        state.stats["shallow_moments_mean"],
        state.stats["shallow_moments_precision"],
    )
    assert member[8:].min() > member[:8].max()
    # through a saved and loaded checkpoint, as the service scores
    ckpt = new_checkpoint(network.config, ["a", "b", "c"])
    ckpt.network.load_state_dict(network.state_dict())
    ckpt.ood = state
    save_checkpoint(ckpt, tmp_path / "gate.pt")
    loaded = load_checkpoint(tmp_path / "gate.pt")
    for key in ("shallow_moments_mean", "shallow_moments_precision", "combined_members"):
        np.testing.assert_array_equal(loaded.ood.stats[key], state.stats[key])
    with torch.inference_mode():
        out, squeeze = forward_with_squeeze(loaded.network.eval(), clean, True)
        np.testing.assert_allclose(
            detector_scores(loaded.ood, clean, out, None, squeeze=squeeze),
            scores_from_inputs(state, collect_inputs(network, None, clean)),
            rtol=1e-4,
            atol=1e-4,
        )


def test_shallow_moments_without_the_map_or_statistics_say_so(
    tiny_model: tuple[ACIRNet, ReconstructionDecoder],
) -> None:
    network, _ = tiny_model
    state = fit_ood_state(network, None, _smooth_images(100, 0), _smooth_images(40, 1))
    clean = _smooth_images(4, 2)
    with torch.inference_mode():
        out, squeeze = forward_with_squeeze(network, clean, True)
        assert out.shallow is not None and len(out.shallow) == 4
        without_map = out._replace(shallow=None)  # an output built without the layer-2 map
        with pytest.raises(ValueError, match="shallow_moments were not collected"):
            detector_scores(state, clean, without_map, None, squeeze=squeeze)
    probe = collect_inputs(network, None, clean)
    del state.stats["shallow_moments_precision"]
    with pytest.raises(ValueError, match="'shallow_moments' is not fitted"):
        scores_from_inputs(state, probe)


def test_gate_fitted_before_shallow_moments_scores_unchanged(
    tiny_model: tuple[ACIRNet, ReconstructionDecoder],
) -> None:
    """A checkpoint whose stored members predate ``shallow_moments`` (the members shipped before
    it) keeps scoring as before: from its own members, with an output that lacks the map."""
    network, _ = tiny_model
    old_members = ("mahalanobis", "knn", "deep_moments", "input_stats", "squeeze")
    state = fit_ood_state(network, None, _smooth_images(100, 0), _smooth_images(40, 1))
    val = collect_inputs(network, None, _smooth_images(40, 1))
    state.stats.update(fit_combined(state.stats, val, old_members))
    for key in ("shallow_moments_mean", "shallow_moments_precision"):
        del state.stats[key]  # an old gate stores no statistics for it
    back = OODState.from_dict(state.to_dict())
    clean = torch.cat([_smooth_images(6, 2), _checkerboards(2)])
    probe = collect_inputs(network, None, clean)
    assert probe.deep_moments is not None and probe.input_stats is not None
    assert probe.squeeze is not None
    stats = back.stats
    members = [
        mahalanobis_score(probe.feature, stats),
        knn_score(probe.feature, stats),
        min_mahalanobis(
            probe.deep_moments, stats["deep_moments_mean"], stats["deep_moments_precision"]
        ),
        min_mahalanobis(
            probe.input_stats, stats["input_stats_mean"], stats["input_stats_precision"]
        ),
        probe.squeeze,
    ]
    expected = sum(
        (m - mean) / std
        for m, mean, std in zip(members, stats["combined_mean"], stats["combined_std"], strict=True)
    )
    with torch.inference_mode():
        out, squeeze = forward_with_squeeze(network, clean, True)
        scores = detector_scores(back, clean, out._replace(shallow=None), None, squeeze=squeeze)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
