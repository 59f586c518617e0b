"""Out-of-distribution detectors for the ACIR gate (every score: higher = more OOD).

Detectors read the quantities one forward pass gives (blended feature, class logits, and the
stage-2 decoder's reconstruction of the input, and channel moments of the deep and shallow
backbone maps); the ``squeeze`` member of ``combined`` also reads the blended feature of a
smoothed copy of the input, from the same batched call. Feature statistics are fitted on the
training split; the threshold is calibrated on in-distribution validation images so that a
chosen share of them (``target_fpr``) would be rejected. The gate rejects an image when
``score > threshold``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.network import ACIROutput
from models.ood_moments import channel_moments, fit_gaussian, input_statistics, min_mahalanobis

logger = logging.getLogger(__name__)

DETECTORS: tuple[str, ...] = ("reconstruction", "mahalanobis", "knn", "energy", "msp", "combined")
DEFAULT_DETECTOR = "combined"
# Scores ``combined`` may draw on: the single detectors plus three Gaussian summary scores
# (deep-map and shallow-map channel moments, input intensity/texture statistics; see
# models/ood_moments.py) and the feature squeezing distance (see squeeze_images). Indices into
# this tuple are stored in checkpoints, so only ever append.
COMBINABLE: tuple[str, ...] = (
    "reconstruction", "mahalanobis", "knn", "energy", "msp", "deep_moments", "input_stats",
    "squeeze", "shallow_moments",
)  # fmt: skip
# Chosen on BrainAtlas2D measurements (see fit_combined), with the val split as in-distribution:
# the sum of standardised scores beat the max rule and every member alone. ``squeeze`` lifted
# PGD and macaque AUROC without costing far/near; ``shallow_moments`` (layer-2 channel moments)
# lifted far and near, and replaced ``deep_moments`` and ``input_stats``: beside it they added
# nothing on far/near and diluted the squeeze signal on small adversarial budgets.
COMBINED_MEMBERS: tuple[str, ...] = (
    "mahalanobis", "knn", "shallow_moments", "squeeze",
)  # fmt: skip
COMBINE_RULES: tuple[str, ...] = ("max", "sum")
DEFAULT_COMBINE_RULE = "sum"
# Members that read an optional OODInputs field.
_OPTIONAL_INPUTS = {
    "reconstruction": "recon_error",
    "deep_moments": "deep_moments",
    "input_stats": "input_stats",
    "squeeze": "squeeze",
    "shallow_moments": "shallow_moments",
}
# The Gaussian summary members: their stats keys are ``{name}_mean`` / ``{name}_precision``, and
# whether each Gaussian is class-conditional (one mean per training class).
_GAUSSIAN_MEMBERS = {"deep_moments": True, "input_stats": False, "shallow_moments": True}
# Bumped whenever what fit_stats stores changes meaning (squeeze_images included: the stored
# standardisation of ``squeeze`` is of distances under that squeezer); stale statistics are refused.
STATS_VERSION = 2
# Detectors that read no fitted statistics.
_STATLESS = ("reconstruction", "energy", "msp")
KNN_BANK_SIZE = 4096
KNN_K = 10


@dataclass
class OODState:
    """Which detector gates queries, its fitted statistics and the calibrated threshold."""

    detector: str = "reconstruction"
    threshold: float = math.inf
    target_fpr: float = 0.05
    stats: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_detector(self.detector)

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "threshold": float(self.threshold),
            "target_fpr": float(self.target_fpr),
            "stats": {k: np.asarray(v).copy() for k, v in self.stats.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OODState:
        stats = {str(k): np.asarray(v) for k, v in dict(d.get("stats") or {}).items()}
        return cls(
            detector=str(d.get("detector", "reconstruction")),
            threshold=float(d.get("threshold", math.inf)),
            target_fpr=float(d.get("target_fpr", 0.05)),
            stats=stats,
        )


def check_detector(name: str) -> str:
    if name not in DETECTORS:
        raise ValueError(f"unknown OOD detector {name!r}; valid: {', '.join(DETECTORS)}")
    return name


@dataclass
class OODInputs:
    """Per-image quantities the detectors read, as numpy (so scoring needs no graph)."""

    feature: np.ndarray  # float32 [B, d], raw blended feature
    logits: np.ndarray  # float32 [B, K]
    recon_error: np.ndarray | None  # float32 [B], None when no decoder was run
    deep_moments: np.ndarray | None = None  # float32 [B, 2·C4], see models/ood_moments.py
    input_stats: np.ndarray | None = None  # float32 [B, 8]
    squeeze: np.ndarray | None = None  # float32 [B], see squeeze_distance
    shallow_moments: np.ndarray | None = None  # float32 [B, 2·C2], of the layer-2 map

    @staticmethod
    def concat(parts: list[OODInputs]) -> OODInputs:
        def join(name: str) -> np.ndarray | None:
            arrays = [getattr(p, name) for p in parts]
            return None if any(a is None for a in arrays) else np.concatenate(arrays)

        return OODInputs(
            feature=np.concatenate([p.feature for p in parts]),
            logits=np.concatenate([p.logits for p in parts]),
            recon_error=join("recon_error"),
            deep_moments=join("deep_moments"),
            input_stats=join("input_stats"),
            squeeze=join("squeeze"),
            shallow_moments=join("shallow_moments"),
        )


def reconstruction_error(images: Tensor, deep: Tensor, decoder: nn.Module) -> np.ndarray:
    """Mean squared error per image between ``decoder(deep)`` and the network input."""
    with torch.inference_mode():
        recon = decoder(deep)
        error = (recon - images).pow(2).flatten(1).mean(dim=1)
    return error.detach().cpu().numpy().astype(np.float32)


def _median3(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))


def median3x3(images: Tensor) -> Tensor:
    """3×3 median filter of B×C×H×W images (replicated borders), same shape.

    Separable: sort each horizontal triple, then the window's median is the median of (the
    largest of the three row minima, the median of the row medians, the smallest row maximum).
    About 10× faster on a CPU thread than a median over unfolded windows, and exactly equal.
    """
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    a, b, c = padded[..., :-2], padded[..., 1:-1], padded[..., 2:]
    low_ab, high_ab = torch.minimum(a, b), torch.maximum(a, b)
    low, high = torch.minimum(low_ab, c), torch.maximum(high_ab, c)
    mid = torch.maximum(low_ab, torch.minimum(high_ab, c))

    def rows(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return t[..., :-2, :], t[..., 1:-1, :], t[..., 2:, :]

    max_low = torch.stack(rows(low)).amax(0)
    min_high = torch.stack(rows(high)).amin(0)
    return _median3(max_low, _median3(*rows(mid)), min_high)


def squeeze_images(images: Tensor) -> Tensor:
    """Feature-squeezing copy (Xu et al., NDSS 2018) of B×C×S×S images: a 3×3 median, then a
    2×2 mean, per channel with replicated borders.

    Adversarial perturbations are high-frequency, so the smoothing undoes much of their effect on
    the network, while clean brain patches (smooth at this scale) barely change.
    """
    median = median3x3(images)
    return F.avg_pool2d(F.pad(median, (0, 1, 0, 1), mode="replicate"), 2, stride=1)


def squeeze_distance(feature: Tensor, squeezed_feature: Tensor) -> np.ndarray:
    """float32 [B]: cosine distance between each image's blended feature and its squeezed copy's."""
    cosine = F.cosine_similarity(feature.float(), squeezed_feature.float(), dim=1, eps=1e-12)
    return (1.0 - cosine).detach().cpu().numpy().astype(np.float32)


def forward_with_squeeze(
    network: nn.Module, images: Tensor, squeeze: bool
) -> tuple[ACIROutput, np.ndarray | None]:
    """The network's output on ``images`` and, with ``squeeze``, their squeeze distances.

    The squeezed copies go through the same call, concatenated along the batch dimension: one
    batched pass costs less than two (about +50% instead of +100% at batch 1 on a CPU thread).
    """
    if not squeeze:
        return network(images), None
    n = len(images)
    both = network(torch.cat([images, squeeze_images(images)]))
    out = both._replace(**{k: t[:n] for k, t in both._asdict().items() if t is not None})
    return out, squeeze_distance(out.feature, both.feature[n:])


def ood_inputs(
    images: Tensor,
    out: ACIROutput,
    decoder: nn.Module | None,
    squeeze: np.ndarray | None = None,
    summaries: Collection[str] = tuple(_GAUSSIAN_MEMBERS),
) -> OODInputs:
    """Collect detector inputs from one forward pass (decoder and squeeze distances optional).

    ``summaries`` names the Gaussian summary members to compute (default all, for fitting); the
    service asks only for those its gate reads (the input statistics alone cost ~0.5 ms/image).
    """
    error = None if decoder is None else reconstruction_error(images, out.deep, decoder)
    shallow = out.shallow if "shallow_moments" in summaries else None
    return OODInputs(
        feature=out.feature.detach().cpu().numpy().astype(np.float32),
        logits=out.logits.detach().cpu().numpy().astype(np.float32),
        recon_error=error,
        deep_moments=channel_moments(out.deep) if "deep_moments" in summaries else None,
        input_stats=input_statistics(images) if "input_stats" in summaries else None,
        squeeze=squeeze,
        shallow_moments=None if shallow is None else channel_moments(shallow),
    )


def collect_inputs(
    network: nn.Module,
    decoder: nn.Module | None,
    images: Tensor,
    batch_size: int = 256,
    squeeze: bool = True,
) -> OODInputs:
    """Batched eval-mode forward passes over preprocessed images (B×C×S×S in [0,1])."""
    network.eval()
    if decoder is not None:
        decoder.eval()
    parts = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            out, distances = forward_with_squeeze(network, batch, squeeze)
            parts.append(ood_inputs(batch, out, decoder, distances))
    return OODInputs.concat(parts)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _logsumexp(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))[:, 0]


def energy_score(logits: np.ndarray) -> np.ndarray:
    """Negative free energy, −logsumexp(logits): confident in-distribution logits score low."""
    return (-_logsumexp(np.asarray(logits, dtype=np.float64))).astype(np.float32)


def msp_score(logits: np.ndarray) -> np.ndarray:
    """Negative maximum softmax probability."""
    logits = np.asarray(logits, dtype=np.float64)
    prob_max = np.exp(logits.max(axis=1) - _logsumexp(logits))
    return (-prob_max).astype(np.float32)


def _require(stats: dict[str, np.ndarray], keys: tuple[str, ...], detector: str) -> None:
    missing = [k for k in keys if k not in stats]
    if missing:
        raise ValueError(f"OOD detector {detector!r} is not fitted (missing {missing})")


def mahalanobis_score(feature: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    """Smallest class-conditional Mahalanobis distance (shared covariance) of the feature."""
    _require(stats, ("maha_means", "maha_precision"), "mahalanobis")
    return min_mahalanobis(feature, stats["maha_means"], stats["maha_precision"])


def _gaussian_member(
    stats: dict[str, np.ndarray], values: np.ndarray | None, key: str
) -> np.ndarray:
    _require(stats, (f"{key}_mean", f"{key}_precision"), key)
    if values is None:
        raise ValueError(
            f"{key} were not collected for these inputs (the network output lacks its map?)"
        )
    return min_mahalanobis(values, stats[f"{key}_mean"], stats[f"{key}_precision"])


def knn_score(feature: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    """Cosine distance to the k-th nearest training feature in the stored bank."""
    _require(stats, ("knn_bank", "knn_k"), "knn")
    bank = np.asarray(stats["knn_bank"], dtype=np.float32)  # no per-request copy
    k = int(min(int(stats["knn_k"]), len(bank)))
    sims = _normalise(feature) @ bank.T
    kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1]
    return (1.0 - kth).astype(np.float32)


def _single_score(stats: dict[str, np.ndarray], inputs: OODInputs, name: str) -> np.ndarray:
    if name == "reconstruction":
        if inputs.recon_error is None:
            raise ValueError("the reconstruction detector needs a decoder")
        return inputs.recon_error.astype(np.float32)
    if name == "mahalanobis":
        return mahalanobis_score(inputs.feature, stats)
    if name == "knn":
        return knn_score(inputs.feature, stats)
    if name == "energy":
        return energy_score(inputs.logits)
    if name == "msp":
        return msp_score(inputs.logits)
    if name in _GAUSSIAN_MEMBERS:
        return _gaussian_member(stats, getattr(inputs, name), name)
    if name == "squeeze":
        if inputs.squeeze is None:
            raise ValueError(
                "squeeze distances were not collected for these inputs (forward_with_squeeze)"
            )
        return inputs.squeeze.astype(np.float32)
    raise ValueError(f"{name!r} is not a single detector")


def combined_score(stats: dict[str, np.ndarray], inputs: OODInputs) -> np.ndarray:
    """Member scores standardised by their in-distribution val mean/std, then max or sum."""
    _require(stats, ("combined_members", "combined_mean", "combined_std"), "combined")
    members = [COMBINABLE[int(i)] for i in stats["combined_members"]]
    z = np.stack(
        [
            (_single_score(stats, inputs, name) - stats["combined_mean"][j])
            / stats["combined_std"][j]
            for j, name in enumerate(members)
        ]
    )
    rule = COMBINE_RULES[int(stats.get("combined_rule", np.asarray(0)))]
    return (z.max(axis=0) if rule == "max" else z.sum(axis=0)).astype(np.float32)


def scores_from_inputs(
    state: OODState, inputs: OODInputs, detector: str | None = None
) -> np.ndarray:
    """Scores of ``detector`` (default: the state's) from precomputed inputs, float32 [B]."""
    name = check_detector(detector or state.detector)
    if name not in _STATLESS:
        check_stats_version(state.stats)
    if name == "combined":
        return combined_score(state.stats, inputs)
    return _single_score(state.stats, inputs, name)


def check_stats_version(stats: dict[str, np.ndarray]) -> None:
    """Refuse statistics fitted by another version of this module (their meaning differs)."""
    version = int(stats["stats_version"]) if "stats_version" in stats else 1
    if stats and version != STATS_VERSION:
        raise ValueError(
            f"OOD statistics have version {version}, this build reads {STATS_VERSION}; "
            "refit them (`acir train --stage ood`)"
        )


def _members_read(state: OODState, name: str) -> set[str]:
    """The scores detector ``name`` of ``state`` reads: itself, or the stored ``combined`` members
    (none while they are unfitted: scoring then refuses anyway)."""
    if name != "combined":
        return {name}
    stored = state.stats.get("combined_members")
    return set() if stored is None else {COMBINABLE[int(i)] for i in stored.tolist()}


def _uses_member(state: OODState, name: str, member: str) -> bool:
    """Whether detector ``name`` of ``state`` reads ``member`` (itself, or inside ``combined``)."""
    return member in _members_read(state, name)


def needs_squeeze(state: OODState, detector: str | None = None) -> bool:
    """Whether scoring needs the squeezed copy's forward pass (see forward_with_squeeze)."""
    return _uses_member(state, check_detector(detector or state.detector), "squeeze")


def detector_scores(
    state: OODState,
    images: Tensor,
    out: ACIROutput,
    decoder: nn.Module | None,
    detector: str | None = None,
    squeeze: np.ndarray | None = None,
) -> np.ndarray:
    """float32 [B] OOD scores (higher = more OOD); ``images`` is the preprocessed network input,
    ``squeeze`` the squeeze distances when the detector reads them (forward_with_squeeze)."""
    name = check_detector(detector or state.detector)
    reads = _members_read(state, name)
    use_decoder = decoder if "reconstruction" in reads else None
    return scores_from_inputs(state, ood_inputs(images, out, use_decoder, squeeze, reads), name)


def calibrate_threshold(val_scores: np.ndarray, target_fpr: float) -> float:
    """Threshold with at most ``floor(target_fpr·n)`` in-distribution scores strictly above it."""
    if not 0.0 <= target_fpr < 1.0:
        raise ValueError(f"target_fpr must be in [0, 1), got {target_fpr}")
    scores = np.sort(np.asarray(val_scores, dtype=np.float64).ravel())
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        raise ValueError("calibrate_threshold needs at least one finite score")
    allowed = math.floor(target_fpr * scores.size + 1e-9)
    return float(scores[scores.size - 1 - allowed])


def calibrate_on_sets(score_sets: Sequence[np.ndarray], target_fpr: float) -> float:
    """The lowest threshold that rejects at most ``target_fpr`` of EACH in-distribution set.

    With calibration images from several sources (here two brain volumes), a pooled quantile
    lets the larger or more typical source hide an over-rejected one; the per-set maximum keeps
    the false-rejection promise for every source.
    """
    if not score_sets:
        raise ValueError("calibrate_on_sets needs at least one set of scores")
    return max(calibrate_threshold(scores, target_fpr) for scores in score_sets)


def fit_mahalanobis(feature: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Class means and a shrunk shared precision matrix of the raw blended features.

    Raw features, not L2-normalised ones: on BrainAtlas2D the feature norm carries OOD signal
    (normalising cost 0.02–0.2 AUROC on every OOD set in our measurements).
    """
    means, precision = fit_gaussian(feature, labels)
    return {"maha_means": means, "maha_precision": precision}


def fit_moment_gaussians(train: OODInputs, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Gaussians of the summaries that were collected: class-conditional for the feature-map
    moments, a single one for the (class-agnostic) input statistics."""
    stats = {}
    for key, by_class in _GAUSSIAN_MEMBERS.items():
        values = getattr(train, key)
        if values is not None:
            key_labels = labels if by_class else None
            stats[f"{key}_mean"], stats[f"{key}_precision"] = fit_gaussian(values, key_labels)
    return stats


def fit_knn(
    feature: np.ndarray, bank_size: int = KNN_BANK_SIZE, k: int = KNN_K, seed: int = 0
) -> dict[str, np.ndarray]:
    """A seeded subsample of normalised training features to measure neighbour distances to."""
    x = _normalise(feature)
    if len(x) > bank_size:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), bank_size, replace=False))]
    return {"knn_bank": x.astype(np.float32), "knn_k": np.asarray(min(k, len(x)), dtype=np.int64)}


def _collected(member: str, inputs: OODInputs) -> bool:
    """Whether ``inputs`` carry what ``member`` reads (the optional ones may be absent)."""
    field_name = _OPTIONAL_INPUTS.get(member)
    return field_name is None or getattr(inputs, field_name) is not None


def fit_combined(
    stats: dict[str, np.ndarray],
    val: OODInputs,
    members: tuple[str, ...] = COMBINED_MEMBERS,
    rule: str = DEFAULT_COMBINE_RULE,
) -> dict[str, np.ndarray]:
    """Per-member mean/std of in-distribution val scores, for standardising before combining."""
    if rule not in COMBINE_RULES or not set(members) <= set(COMBINABLE):
        raise ValueError(f"bad combination {rule!r} of {members}")
    usable = [m for m in members if _collected(m, val)]
    scores = [_single_score(stats, val, m).astype(np.float64) for m in usable]
    return {
        "combined_members": np.asarray([COMBINABLE.index(m) for m in usable], dtype=np.int64),
        "combined_mean": np.asarray([s.mean() for s in scores], dtype=np.float32),
        "combined_std": np.asarray([max(s.std(), 1e-12) for s in scores], dtype=np.float32),
        "combined_rule": np.asarray(COMBINE_RULES.index(rule), dtype=np.int64),
    }


def fit_stats(
    train: OODInputs, val: OODInputs, train_labels: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """All detectors' statistics: feature ones from train, standardisation from val."""
    labels = train.logits.argmax(axis=1) if train_labels is None else np.asarray(train_labels)
    stats = {
        **fit_mahalanobis(train.feature, labels),
        **fit_knn(train.feature),
        **fit_moment_gaussians(train, labels),
    }
    stats.update(fit_combined(stats, val))
    stats["stats_version"] = np.asarray(STATS_VERSION, dtype=np.int64)
    return stats


def state_from_inputs(
    train: OODInputs,
    val: OODInputs,
    detector: str = DEFAULT_DETECTOR,
    target_fpr: float = 0.05,
    train_labels: np.ndarray | None = None,
    extra_calibration: Sequence[OODInputs] = (),
) -> OODState:
    """Fit statistics and calibrate the chosen detector's threshold on val scores (and on each
    ``extra_calibration`` set: at most ``target_fpr`` of every one is rejected)."""
    state = OODState(detector=check_detector(detector), target_fpr=target_fpr)
    state.stats = fit_stats(train, val, train_labels)
    sets = [scores_from_inputs(state, inputs) for inputs in (val, *extra_calibration)]
    state.threshold = calibrate_on_sets(sets, target_fpr)
    logger.info(
        "OOD gate %s: threshold %.5g at target FPR %.3f", detector, state.threshold, target_fpr
    )
    return state


def fit_ood_state(
    network: nn.Module,
    decoder: nn.Module | None,
    train_images: Tensor,
    val_images: Tensor,
    detector: str = DEFAULT_DETECTOR,
    target_fpr: float = 0.05,
    batch_size: int = 256,
    train_labels: np.ndarray | None = None,
    extra_calibration_images: Sequence[Tensor] = (),
) -> OODState:
    """Fit on the TRAIN split and calibrate on in-distribution VAL images (all preprocessed),
    and on any ``extra_calibration_images`` sets (held-out in-distribution images of other
    sources; see `calibrate_on_sets`).

    ``train_labels`` (optional) gives the Mahalanobis classes; without them the network's own
    predictions are used.
    """
    train = collect_inputs(network, decoder, train_images, batch_size)
    val = collect_inputs(network, decoder, val_images, batch_size)
    extra = [collect_inputs(network, decoder, x, batch_size) for x in extra_calibration_images]
    return state_from_inputs(train, val, detector, target_fpr, train_labels, extra)
