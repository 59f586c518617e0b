"""In-memory store of the reduced re-ranking features, keyed by image id.

The database holds the vectors as float16 blobs; the store keeps them as one contiguous float32
matrix (converted once, on add) so that a query's re-ranking is a single row gather plus one small
dot product: no per-query dtype conversion, no Python loop over ids, no database round trip.
Ids map to rows through a sorted id array (`searchsorted`), which works for any int64 ids.
"""

from __future__ import annotations

import threading

import numpy as np

FEATURE_DTYPE = np.dtype("<f2")  # the database format
MEMORY_DTYPE = np.dtype(np.float32)  # the in-memory format


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
    """Append-mostly float32 matrix with an id -> row map; rows of deleted ids are left as holes.

    Readers see a consistent snapshot (`_keys`, `_rows` and `_matrix` are swapped together under
    the lock and never modified in place where a reader may look), so a lookup holds the lock
    only to take the snapshot.
    """

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self.dim = dim
        self._matrix = np.zeros((max(capacity, 1), dim), MEMORY_DTYPE)
        self._keys = np.empty(0, np.int64)  # sorted ids
        self._rows = np.empty(0, np.int64)  # matrix row of each key
        self._used = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self._keys.shape[0])

    def __contains__(self, image_id: int) -> bool:
        return bool(self.take(np.array([image_id], np.int64))[0][0])

    def add(self, ids: np.ndarray, features: np.ndarray) -> None:
        """Store (or replace) the features of `ids` (values as float16 would hold them)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        # Round through the database format, so results are the same before and after a restart.
        feats = np.asarray(features, FEATURE_DTYPE).astype(MEMORY_DTYPE).reshape(-1, self.dim)
        if feats.shape[0] != ids.shape[0]:
            raise ValueError(f"{ids.shape[0]} ids but {feats.shape[0]} feature rows")
        with self._lock:
            start = self._used
            self._grow(start + ids.shape[0])
            self._matrix[start : start + ids.shape[0]] = feats  # rows no reader can see yet
            self._used += ids.shape[0]
            self._index_rows(ids, np.arange(start, self._used, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        with self._lock:
            keep = ~np.isin(self._keys, np.asarray(ids, dtype=np.int64))
            self._keys, self._rows = self._keys[keep], self._rows[keep]

    def take(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bool mask of `ids` present, float32 [mask.sum(), d] features of those, in order)."""
        with self._lock:
            keys, rows, matrix = self._keys, self._rows, self._matrix
        if keys.shape[0] == 0:
            return np.zeros(ids.shape, bool), np.empty((0, self.dim), MEMORY_DTYPE)
        pos = np.searchsorted(keys, ids)
        np.minimum(pos, keys.shape[0] - 1, out=pos)
        present = keys[pos] == ids
        if not present.all():
            pos = pos[present]
        return present, matrix.take(rows[pos], axis=0)

    def get(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(present ids, their features as float32 [n, d]); unknown ids are dropped."""
        ids = np.asarray(ids, dtype=np.int64)
        present, feats = self.take(ids)
        return ids[present], feats

    def _index_rows(self, ids: np.ndarray, rows: np.ndarray) -> None:
        keys = self._keys
        ascending = ids.shape[0] < 2 or bool((ids[1:] > ids[:-1]).all())
        if ascending and (keys.shape[0] == 0 or ids.shape[0] == 0 or ids[0] > keys[-1]):
            # The usual case (database ids grow): append, no re-sort.
            self._keys = np.concatenate([keys, ids])
            self._rows = np.concatenate([self._rows, rows])
            return
        keep = ~np.isin(keys, ids)  # a re-added id points at its new row
        merged = np.concatenate([keys[keep], ids])
        order = np.argsort(merged, kind="stable")
        self._keys, self._rows = merged[order], np.concatenate([self._rows[keep], rows])[order]

    def _grow(self, needed: int) -> None:
        if needed <= self._matrix.shape[0]:
            return
        bigger = np.zeros((max(needed, 2 * self._matrix.shape[0]), self.dim), MEMORY_DTYPE)
        bigger[: self._used] = self._matrix[: self._used]
        self._matrix = bigger  # readers holding the old matrix keep a valid copy
