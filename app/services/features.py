"""In-memory store of the reduced re-ranking features, keyed by image id.

The database holds the vectors as float16 blobs; the store keeps them as one contiguous float32
matrix (converted once, on add), with each row's L2 norm (also computed once, on add), so that a
query's re-ranking is a single row gather plus one small dot product: no per-query dtype
conversion or norm, no Python loop over ids, no database round trip.
Ids map to rows through a dense id -> row array while the ids are positive and not too sparse
(database ids grow from 1), else through a sorted id array (`searchsorted`), for any int64 ids.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from index.rerank import similarity_divisors
from index.rerank_kernel import KEY_ID_LIMIT, rank_rows

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


# A dense id -> row array is used while the largest id is below this many entries per live id
# (plus a floor): 8 bytes per entry, so at most a few times the memory of the sorted id map.
_DENSE_PER_ID = 4
_DENSE_FLOOR = 1 << 16


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What a reader needs, published as one object (one attribute read takes it whole)."""

    keys: np.ndarray  # sorted ids
    rows: np.ndarray  # matrix row of each key
    matrix: np.ndarray  # float32 [capacity, d]; rows past the used ones are not referenced
    divisors: np.ndarray  # float32 [capacity], `similarity_divisors` of each matrix row
    dense: np.ndarray | None  # row of each id (-1: none), last entry -1; None: use `keys`

    def slots(self, ids: np.ndarray) -> np.ndarray:
        """Matrix row of each id, -1 where the id is not stored."""
        if self.dense is not None:
            # Ids in dense mode are >= 1: a negative id clips to entry 0 and a too-large id to
            # the last entry, and both hold -1.
            return self.dense.take(ids, mode="clip")
        keys = self.keys
        pos = np.searchsorted(keys, ids)
        np.minimum(pos, keys.shape[0] - 1, out=pos)
        return np.where(keys[pos] == ids, self.rows[pos], -1)


class FeatureStore:
    """Append-mostly float32 matrix with an id -> row map; rows of deleted ids are left as holes.

    Readers see a consistent snapshot: writers (serialised by the lock) build new id maps and
    publish them with the matrix in one `_Snapshot`, and only write matrix rows that no published
    map references yet, so a lookup takes no lock at all.
    """

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self.dim = dim
        empty = np.empty(0, np.int64)
        rows = max(capacity, 1)
        self._snap = _Snapshot(empty, empty, np.zeros((rows, dim), MEMORY_DTYPE),
                               np.ones(rows, MEMORY_DTYPE), np.full(1, -1, np.int64))  # fmt: skip
        self._used = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self._snap.keys.shape[0])

    def __contains__(self, image_id: int) -> bool:
        return bool(self._snap.slots(np.array([image_id], np.int64))[0] >= 0)

    def add(self, ids: np.ndarray, features: np.ndarray) -> None:
        """Store (or replace) the features of `ids` (values as float16 would hold them)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        # Round through the database format, so results are the same before and after a restart.
        feats = np.asarray(features, FEATURE_DTYPE).astype(MEMORY_DTYPE).reshape(-1, self.dim)
        if feats.shape[0] != ids.shape[0]:
            raise ValueError(f"{ids.shape[0]} ids but {feats.shape[0]} feature rows")
        with self._lock:
            start, stop = self._used, self._used + ids.shape[0]
            matrix, divisors = self._grown(stop)
            matrix[start:stop] = feats  # rows no published map references yet
            divisors[start:stop] = similarity_divisors(feats)
            self._used = stop
            keys, rows = _index_rows(self._snap, ids, np.arange(start, stop, dtype=np.int64))
            self._snap = _snapshot(keys, rows, matrix, divisors)

    def remove(self, ids: np.ndarray) -> None:
        with self._lock:
            snap = self._snap
            keep = ~np.isin(snap.keys, np.asarray(ids, dtype=np.int64))
            self._snap = _snapshot(snap.keys[keep], snap.rows[keep], snap.matrix, snap.divisors)

    def take(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bool mask of `ids` present, float32 [mask.sum(), d] features of those, in order)."""
        snap = self._snap
        slots = snap.slots(np.asarray(ids, np.int64))
        present = slots >= 0
        if not present.all():
            slots = slots[present]
        return present, snap.matrix.take(slots, axis=0)

    def take_prepared(
        self, ids: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, int | None]:
        """`take` for re-ranking: (mask, features, their `similarity_divisors`, id limit).

        `ids` must be a non-empty int64 array (the index's candidates). The mask is None when
        all are present; the id limit (exclusive) bounds the present ids when the store knows
        one for free (dense id map), else it is None.
        """
        snap = self._snap
        slots = snap.slots(ids)
        present = None
        if np.minimum.reduce(slots) < 0:  # cheaper than slots.min()
            present = slots >= 0
            slots = slots[present]
        limit = None if snap.dense is None else snap.dense.shape[0]
        return present, snap.matrix.take(slots, axis=0), snap.divisors.take(slots), limit

    def rank(
        self, ids: np.ndarray, query: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The best k of the candidate `ids` (int64, unique) by similarity to `query` (float32),
        with the compiled kernel: (positions into `ids`, similarities), best first; ids without
        stored features are skipped. None where a stored id reaches the kernel's id limit (the
        caller then takes the numpy path).
        """
        snap = self._snap
        if snap.keys.shape[0] and snap.keys[-1] >= KEY_ID_LIMIT:
            return None
        return rank_rows(snap.matrix, snap.divisors, snap.slots(ids), ids, query, k)

    def get(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(present ids, their features as float32 [n, d]); unknown ids are dropped."""
        ids = np.asarray(ids, dtype=np.int64)
        present, feats = self.take(ids)
        return ids[present], feats

    def _grown(self, needed: int) -> tuple[np.ndarray, np.ndarray]:
        """The matrix and divisors, replaced by bigger copies when `needed` rows do not fit."""
        matrix, divisors = self._snap.matrix, self._snap.divisors
        if needed <= matrix.shape[0]:
            return matrix, divisors
        size = max(needed, 2 * matrix.shape[0])
        bigger = np.zeros((size, self.dim), MEMORY_DTYPE)
        bigger_divisors = np.ones(size, MEMORY_DTYPE)
        bigger[: self._used] = matrix[: self._used]
        bigger_divisors[: self._used] = divisors[: self._used]
        return bigger, bigger_divisors  # readers holding the old matrix keep a valid copy


def _index_rows(snap: _Snapshot, ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """(keys, rows) with `ids` mapped to `rows`, as new arrays."""
    keys = snap.keys
    ascending = ids.shape[0] < 2 or bool((ids[1:] > ids[:-1]).all())
    if ascending and (keys.shape[0] == 0 or ids.shape[0] == 0 or ids[0] > keys[-1]):
        # The usual case (database ids grow): append, no re-sort.
        return np.concatenate([keys, ids]), np.concatenate([snap.rows, rows])
    keep = ~np.isin(keys, ids)  # a re-added id points at its new row
    merged = np.concatenate([keys[keep], ids])
    order = np.argsort(merged, kind="stable")
    return merged[order], np.concatenate([snap.rows[keep], rows])[order]


def _snapshot(
    keys: np.ndarray, rows: np.ndarray, matrix: np.ndarray, divisors: np.ndarray
) -> _Snapshot:
    dense = None
    if keys.shape[0] == 0:
        dense = np.full(1, -1, np.int64)
    elif keys[0] >= 1 and keys[-1] < _DENSE_PER_ID * keys.shape[0] + _DENSE_FLOOR:
        dense = np.full(int(keys[-1]) + 2, -1, np.int64)
        dense[keys] = rows
    return _Snapshot(keys, rows, matrix, divisors, dense)
