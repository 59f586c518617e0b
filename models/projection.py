"""PCA projection of blended features, used to store compact re-ranking features (method.md §5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class FeatureProjection:
    """Centre, project onto the leading principal axes, then L2-normalise."""

    mean: np.ndarray  # float32 [D]
    components: np.ndarray  # float32 [D, d]

    @property
    def input_dim(self) -> int:
        return int(self.components.shape[0])

    @property
    def output_dim(self) -> int:
        return int(self.components.shape[1])

    def apply(self, features: np.ndarray) -> np.ndarray:
        projected = (np.asarray(features, dtype=np.float32) - self.mean) @ self.components
        norms = np.linalg.norm(projected, axis=1, keepdims=True)
        return np.asarray(projected / np.maximum(norms, 1e-12), dtype=np.float32)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "mean": torch.from_numpy(self.mean),
            "components": torch.from_numpy(self.components),
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> FeatureProjection:
        return cls(
            mean=tensors["mean"].numpy().astype(np.float32),
            components=tensors["components"].numpy().astype(np.float32),
        )

    @classmethod
    def identity(cls, dim: int) -> FeatureProjection:
        return cls(np.zeros(dim, np.float32), np.eye(dim, dtype=np.float32))


def fit_projection(features: np.ndarray, output_dim: int) -> FeatureProjection:
    """PCA on training features; keeps min(output_dim, D, N) axes."""
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    keep = min(output_dim, vt.shape[0])
    return FeatureProjection(mean.astype(np.float32), vt[:keep].T.astype(np.float32).copy())
