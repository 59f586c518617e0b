"""Gaussian (Mahalanobis) scoring of summary statistics, for the OOD detectors.

Besides the blended feature, cheap per-image summaries feed the ``combined`` detector: channel
means and standard deviations of a feature map (the deep layer-4 map, and the shallow layer-2
map as in multi-layer Mahalanobis, Lee et al., NeurIPS 2018), and a handful of intensity /
texture statistics of the preprocessed input. Each is modelled as a Gaussian with a shrunk
covariance fitted on the training split.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

DEFAULT_SHRINKAGE = 0.1


def channel_moments(feature_map: Tensor) -> np.ndarray:
    """float32 [B, 2·C]: per-channel spatial mean and standard deviation of a B×C×h×w map."""
    flat = feature_map.detach().float().flatten(2)
    return torch.cat([flat.mean(2), flat.std(2, unbiased=False)], 1).cpu().numpy()


def input_statistics(images: Tensor) -> np.ndarray:
    """float32 [B, 8] of the first channel in [0,1]: mean, std, mean |∂x|, mean |∂y|,
    dark (< 0.05) and bright (> 0.95) shares, 10th and 90th percentiles."""
    gray = images.detach().float()[:, 0]
    flat = gray.flatten(1)
    columns = [
        flat.mean(1),
        flat.std(1, unbiased=False),
        (gray[:, :, 1:] - gray[:, :, :-1]).abs().flatten(1).mean(1),
        (gray[:, 1:, :] - gray[:, :-1, :]).abs().flatten(1).mean(1),
        (flat < 0.05).float().mean(1),
        (flat > 0.95).float().mean(1),
        torch.quantile(flat, 0.1, dim=1),
        torch.quantile(flat, 0.9, dim=1),
    ]
    return torch.stack(columns, 1).cpu().numpy()


def fit_gaussian(
    x: np.ndarray, labels: np.ndarray | None = None, shrinkage: float = DEFAULT_SHRINKAGE
) -> tuple[np.ndarray, np.ndarray]:
    """Class means [K, d] (K = 1 without labels) and the shared, shrunk precision [d, d]."""
    x = np.asarray(x, dtype=np.float64)
    labels = np.zeros(len(x), dtype=np.int64) if labels is None else np.asarray(labels)
    classes = np.unique(labels)
    means = np.stack([x[labels == c].mean(axis=0) for c in classes])
    centred = x - means[np.searchsorted(classes, labels)]
    cov = centred.T @ centred / max(len(x) - 1, 1)
    # Shrink towards a scaled identity: correlated or near-constant dimensions make the raw
    # covariance (close to) singular.
    scale = max(float(np.trace(cov)) / cov.shape[0], 1e-12)
    cov = (1.0 - shrinkage) * cov + shrinkage * scale * np.eye(cov.shape[0])
    return means.astype(np.float32), np.linalg.inv(cov).astype(np.float32)


def min_mahalanobis(x: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row of ``x`` to its nearest mean, float32.

    Works on the differences (x − m) rather than expanding the quadratic form, so float32 stays
    accurate and the stored statistics are used without per-call float64 copies (this runs on
    every search request).
    """
    x = np.asarray(x, dtype=np.float32)
    precision = np.asarray(precision, dtype=np.float32)
    best = np.full(len(x), np.inf, dtype=np.float32)
    for mean in np.asarray(means, dtype=np.float32):
        diff = x - mean
        best = np.minimum(best, np.einsum("ij,ij->i", diff @ precision, diff))
    return np.maximum(best, 0.0)
