"""In-memory store of the reduced re-ranking features (float16), keyed by image id.

The database holds the same vectors; keeping them in memory makes re-ranking a gather plus one
small dot product instead of a database round trip per query.
"""

from __future__ import annotations

import threading

import numpy as np

FEATURE_DTYPE = np.dtype("<f2")


def features_to_bytes(features: np.ndarray) -> list[bytes]:
    """Rows of a float32 [N, d] matrix as float16 little-endian blobs (the database format)."""
    return [row.tobytes() for row in np.asarray(features, dtype=FEATURE_DTYPE)]


def features_from_bytes(blobs: list[bytes], dim: int) -> np.ndarray:
    """Inverse of `features_to_bytes`: float16 [N, d]; raises ValueError on a wrong length."""
    if not blobs:
        return np.empty((0, dim), FEATURE_DTYPE)
    joined = np.frombuffer(b"".join(blobs), dtype=FEATURE_DTYPE)
    if joined.size != len(blobs) * dim:
        raise ValueError(f"stored features do not all have {dim} dimensions")
    return joined.reshape(len(blobs), dim)


class FeatureStore:
    """Append-mostly float16 matrix with an id -> row map; rows of deleted ids are left as holes."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self.dim = dim
        self._matrix = np.zeros((max(capacity, 1), dim), FEATURE_DTYPE)
        self._rows: dict[int, int] = {}
        self._used = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, image_id: int) -> bool:
        return int(image_id) in self._rows

    def add(self, ids: np.ndarray, features: np.ndarray) -> None:
        feats = np.asarray(features, dtype=FEATURE_DTYPE).reshape(-1, self.dim)
        with self._lock:
            self._grow(self._used + feats.shape[0])
            start = self._used
            self._matrix[start : start + feats.shape[0]] = feats
            for offset, image_id in enumerate(ids.tolist()):
                self._rows[int(image_id)] = start + offset
            self._used += feats.shape[0]

    def remove(self, ids: np.ndarray) -> None:
        with self._lock:
            for image_id in ids.tolist():
                self._rows.pop(int(image_id), None)

    def get(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(present ids, their features as float32 [n, d]); unknown ids are dropped."""
        with self._lock:
            pairs = [(i, self._rows[i]) for i in ids.tolist() if i in self._rows]
            rows = np.array([r for _, r in pairs], dtype=np.int64)
            feats = self._matrix[rows].astype(np.float32)
        return np.array([i for i, _ in pairs], dtype=np.int64), feats

    def _grow(self, needed: int) -> None:
        if needed <= self._matrix.shape[0]:
            return
        bigger = np.zeros((max(needed, 2 * self._matrix.shape[0]), self.dim), FEATURE_DTYPE)
        bigger[: self._used] = self._matrix[: self._used]
        self._matrix = bigger
