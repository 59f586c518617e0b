"""Exact Hamming search over packed binary codes with stable int64 ids (FAISS binary flat index).

Results are ordered by (Hamming distance, id), and the answer never depends on insertion order.

Fast path: the flat index uses FAISS's counting k-selection (`use_heap = False`), which returns
each distance's codes in storage order. While codes are stored in ascending id order (the service
adds database ids, which only grow; batches are sorted before adding; removal keeps the order),
FAISS's own answer is already ordered by (distance, id): one search call, nothing more. It is
exact and faster than FAISS's heap selection (measured 22 vs 41 µs for 100 of 10k codes).

Fallback, once ids arrived out of order: the tie group at the k-th distance may be cut in storage
order, so it is completed before the final sort: a single query takes k and then re-reads
everything at distance <= the k-th one with a range search; a batch of queries fetches a margin
past k and re-reads only the rows whose tie group may continue past it.

Thread safety: searches, `ids`, `contains` and the serialisation step of `save` share a read lock
and run concurrently; `add` and `remove` take the write lock and run alone (FAISS CPU indexes are
safe for concurrent reads, not for a read racing a write).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import faiss
import numpy as np

from index import storage
from index._rwlock import ReadWriteLock
from index.codes import check_codes
from index.errors import DuplicateIdError, IndexCorrupt

logger = logging.getLogger(__name__)

SearchResult = tuple[np.ndarray, np.ndarray]
"""(distances int32 [Q, k'], ids int64 [Q, k']) ordered by (distance, id)."""


class BinaryIndex:
    """`IndexBinaryIDMap2(IndexBinaryFlat)` with validation, deterministic order and persistence."""

    def __init__(self, bits: int) -> None:
        if not isinstance(bits, int) or bits <= 0 or bits % 8:
            raise ValueError(f"bits must be a positive multiple of 8, got {bits!r}")
        self._bits = bits
        self._index = faiss.IndexBinaryIDMap2(_counting_flat(bits))
        self._ids = np.empty(0, dtype=np.int64)  # sorted; replaced, never mutated in place
        self._stored_in_id_order = True  # storage order == id order: FAISS ties come out by id
        self._lock = ReadWriteLock()
        self._save_lock = threading.Lock()

    # ---------------------------------------------------------------- properties
    @property
    def bits(self) -> int:
        return self._bits

    @property
    def code_size(self) -> int:
        return self._bits // 8

    @property
    def count(self) -> int:
        return int(self._ids.shape[0])

    @property
    def stored_in_id_order(self) -> bool:
        """True while FAISS alone answers exactly (the fast path in the module docstring)."""
        return self._stored_in_id_order

    def __len__(self) -> int:
        return self.count

    def ids(self) -> np.ndarray:
        """All ids in the index, sorted int64 (a copy)."""
        return self._ids.copy()

    def contains(self, id_: int) -> bool:
        ids = self._ids
        pos = int(np.searchsorted(ids, id_))
        return pos < ids.shape[0] and int(ids[pos]) == int(id_)

    # ------------------------------------------------------------- modification
    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        """Add codes under the caller's ids; rejects ids already present or repeated in a batch."""
        ids = _as_ids(ids)
        check_codes(codes, self.code_size)
        if codes.shape[0] != ids.shape[0]:
            raise ValueError(f"{ids.shape[0]} ids but {codes.shape[0]} codes")
        if _sorted_unique(ids).shape[0] != ids.shape[0]:
            raise DuplicateIdError("ids repeat within the batch")
        with self._lock.write():
            clash = ids[_member(self._ids, ids)]
            if clash.size:
                raise DuplicateIdError(f"ids already in the index: {clash[:10].tolist()}")
            order = np.argsort(ids, kind="stable")
            if self._ids.shape[0] and ids[order[0]] < self._ids[-1]:
                self._stored_in_id_order = False
            self._index.add_with_ids(np.ascontiguousarray(codes[order]), ids[order])
            self._ids = np.sort(np.concatenate([self._ids, ids]))

    def remove(self, ids: np.ndarray) -> int:
        """Remove the given ids (unknown ids are ignored); returns how many were removed."""
        ids = _as_ids(ids)
        with self._lock.write():
            removed = int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
            self._ids = self._ids[~_member(np.sort(ids), self._ids)]
        return removed

    # ------------------------------------------------------------------- search
    def search(
        self, query_codes: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> SearchResult:
        """The k nearest codes per query, ordered by (distance, id); k is clamped to what exists.

        `allowed_ids` restricts the result to those ids (a metadata filter); ids not in the
        index are ignored. Every row has the same length k' = min(k, eligible count).
        """
        check_codes(query_codes, self.code_size)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = np.ascontiguousarray(query_codes)
        with self._lock.read():
            selector, n_eligible = self._selection(allowed_ids)
            k_out = min(k, n_eligible) if queries.shape[0] else 0
            if k_out == 0:
                n = queries.shape[0]
                return np.empty((n, 0), np.int32), np.empty((n, 0), np.int64)
            params = _search_params(selector)
            if self._stored_in_id_order:
                dist, ids = self._index.search(queries, k_out, params=params)
                return dist.astype(np.int32), ids.astype(np.int64, copy=False)
            fetch = min(n_eligible, _fetch_size(k_out))
            dist, ids = self._index.search(queries, fetch, params=params)
            rows = [
                self._exact_row(queries[i], dist[i], ids[i], k_out, fetch < n_eligible, params)
                for i in range(queries.shape[0])
            ]
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

    def search_candidates(
        self, query_code: np.ndarray, n_candidates: int, allowed_ids: np.ndarray | None = None
    ) -> SearchResult:
        """Candidates for re-ranking for one query: (distances int32 [n], ids int64 [n]).

        Same answer as `search` for one query, on the cheaper single-query path (the service's
        per-request path: one FAISS call while ids are stored in order and nothing filters).
        """
        query = self._query_row(query_code)
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be >= 1, got {n_candidates}")
        lock = self._lock
        lock.acquire_read()
        try:
            if allowed_ids is None and self._stored_in_id_order:
                k_out = min(n_candidates, self._ids.shape[0])
                if k_out == 0:
                    return np.empty(0, np.int32), np.empty(0, np.int64)
                return _search_one(self._index, query, k_out, None)  # exact, see module doc
            return self._candidates_slow(query, n_candidates, allowed_ids)
        finally:
            lock.release_read()

    def _query_row(self, query_code: np.ndarray) -> np.ndarray:
        """One query code as a checked, C-contiguous uint8 [1, code_size] array."""
        if (
            type(query_code) is np.ndarray
            and query_code.dtype == np.uint8
            and query_code.shape == (self.code_size,)
            and query_code.flags.c_contiguous
        ):
            return query_code[None]  # the usual case, checked in one go
        query = _one_query(query_code)
        check_codes(query, self.code_size)
        return np.ascontiguousarray(query)

    def _candidates_slow(
        self, query: np.ndarray, n_candidates: int, allowed_ids: np.ndarray | None
    ) -> SearchResult:
        """`search_candidates` with a filter or ids stored out of order (read lock held)."""
        selector, n_eligible = self._selection(allowed_ids)
        k_out = min(n_candidates, n_eligible)
        if k_out == 0:
            return np.empty(0, np.int32), np.empty(0, np.int64)
        params = _search_params(selector)
        dist, ids = _search_one(self._index, query, k_out, params)
        if self._stored_in_id_order:  # already exact, see the module docstring
            return dist, ids
        if k_out == n_eligible:  # everything eligible was returned: no tie group is cut
            return _top_k(dist, ids, k_out)
        dist, ids = self._range(query, int(dist[-1]), params)
        return _top_k(dist, ids, k_out)

    def search_radius(
        self, query_code: np.ndarray, max_distance: int, allowed_ids: np.ndarray | None = None
    ) -> SearchResult:
        """All codes within Hamming distance <= max_distance of one query, by (distance, id)."""
        query = _one_query(query_code)
        check_codes(query, self.code_size)
        with self._lock.read():
            selector, n_eligible = self._selection(allowed_ids)
            if n_eligible == 0 or max_distance < 0:
                return np.empty(0, np.int32), np.empty(0, np.int64)
            params = _search_params(selector)
            dist, ids = self._range(query, max_distance, params)
        order = np.lexsort((ids, dist))
        return dist[order], ids[order]

    def _selection(self, allowed_ids: np.ndarray | None) -> tuple[faiss.IDSelector | None, int]:
        if allowed_ids is None:
            return None, self.count
        allowed = _sorted_unique(_as_ids(allowed_ids))
        present = allowed[_member(self._ids, allowed)]
        return faiss.IDSelectorBatch(present), int(present.shape[0])

    def _exact_row(
        self,
        query: np.ndarray,
        dist: np.ndarray,
        ids: np.ndarray,
        k_out: int,
        truncated: bool,
        params: faiss.SearchParameters | None,
    ) -> SearchResult:
        # FAISS returns the fetched rows sorted by distance. If the last one is still at the
        # k-th distance, the tie group may continue past it: re-read the whole group.
        kth = int(dist[k_out - 1])
        if truncated and int(dist[-1]) == kth:
            dist, ids = self._range(query[None, :], kth, params)
        return _top_k(dist, ids, k_out)

    def _range(
        self, query: np.ndarray, max_distance: int, params: faiss.SearchParameters | None
    ) -> SearchResult:
        # FAISS range search is strict (< radius), hence the + 1.
        _, dist, ids = self._index.range_search(query, int(max_distance) + 1, params=params)
        return dist.astype(np.int32), ids.astype(np.int64, copy=False)

    # -------------------------------------------------------------- persistence
    def save(self, directory: Path, checkpoint_sha256: str) -> None:
        """Atomically write ``index.faiss`` then ``manifest.json`` into `directory`."""
        if not isinstance(checkpoint_sha256, str) or not checkpoint_sha256:
            raise ValueError("checkpoint_sha256 must be a non-empty string")
        with self._save_lock:
            with self._lock.read():
                payload = faiss.serialize_index_binary(self._index).tobytes()
                ids = self._ids
            manifest = storage.IndexManifest(
                format_version=storage.FORMAT_VERSION,
                index_type=storage.INDEX_TYPE,
                bits=self._bits,
                count=int(ids.shape[0]),
                checkpoint_sha256=checkpoint_sha256,
                ids_sha256=storage.id_set_sha256(ids),
                index_sha256=storage.sha256_bytes(payload),
            )
            storage.save_files(Path(directory), payload, manifest)
        logger.info("saved %d %d-bit codes to %s", manifest.count, self._bits, directory)

    @classmethod
    def load(
        cls, directory: Path, expected_bits: int, expected_checkpoint_sha256: str
    ) -> BinaryIndex:
        """Load a saved index, refusing one built for other bits/checkpoint or damaged on disk.

        Raises `IndexMissing`, `IndexMismatch` or `IndexCorrupt` (all `BinaryIndexError`).
        """
        manifest, payload = storage.read_files(Path(directory))
        storage.check_expected(manifest, expected_bits, expected_checkpoint_sha256)
        try:
            raw = faiss.deserialize_index_binary(np.frombuffer(payload, dtype=np.uint8))
        except RuntimeError as exc:
            raise IndexCorrupt(f"cannot deserialise index in {directory}: {exc}") from exc
        if not isinstance(raw, faiss.IndexBinaryIDMap2) or raw.d != manifest.bits:
            raise IndexCorrupt(f"stored index is {type(raw).__name__} with d={raw.d}")
        ids = np.sort(faiss.vector_to_array(raw.id_map).astype(np.int64))
        if ids.shape[0] != manifest.count or raw.ntotal != manifest.count:
            raise IndexCorrupt(f"index holds {raw.ntotal} codes, manifest says {manifest.count}")
        if storage.id_set_sha256(ids) != manifest.ids_sha256:
            raise IndexCorrupt("index id set does not match the manifest checksum")
        loaded = cls(manifest.bits)
        faiss.downcast_IndexBinary(raw.index).use_heap = False  # type: ignore[attr-defined]
        stored = faiss.vector_to_array(raw.id_map)
        loaded._index, loaded._ids = raw, ids
        loaded._stored_in_id_order = bool(np.all(np.diff(stored) > 0))
        logger.info("loaded %d %d-bit codes from %s", manifest.count, manifest.bits, directory)
        return loaded

    @classmethod
    def from_codes(cls, bits: int, ids: np.ndarray, codes: np.ndarray) -> BinaryIndex:
        """Build a fresh index (e.g. a rebuild from the database)."""
        built = cls(bits)
        built.add(ids, codes)
        return built


def _counting_flat(bits: int) -> faiss.IndexBinaryFlat:
    flat = faiss.IndexBinaryFlat(bits)
    flat.use_heap = False  # type: ignore[attr-defined]  # counting selection, storage-order ties
    return flat


def _search_one(
    index: faiss.IndexBinary, query: np.ndarray, k: int, params: faiss.SearchParameters | None
) -> SearchResult:
    """FAISS search of one checked, C-contiguous uint8 [1, code_size] query: ([k], [k]).

    Calls the SWIG method under FAISS's Python `search` wrapper, whose checks (dtype, shape,
    k) the caller has done, into 1-D outputs: about 3 µs less per query, measured (~20 µs at
    10k codes).
    """
    dist = np.empty(k, np.int32)
    ids = np.empty(k, np.int64)
    out = faiss.swig_ptr(dist), faiss.swig_ptr(ids)
    index.search_c(1, faiss.swig_ptr(query), k, *out, params)  # type: ignore[attr-defined]
    return dist, ids


def _top_k(dist: np.ndarray, ids: np.ndarray, k: int) -> SearchResult:
    """The k smallest (distance, id) pairs, in that order, from a set that holds every code
    closer than the k-th distance and (at least the needed part of) the k-th distance group."""
    dist = dist.astype(np.int32, copy=False)
    ids = ids.astype(np.int64, copy=False)
    if dist.shape[0] > _SHRINK_ABOVE * k:
        dist, ids = _shrink_tie_group(dist, ids, k)
    order = np.lexsort((ids, dist))[:k]
    return dist[order], ids[order]


# Sorting a few hundred rows outright is cheaper than shrinking first (fewer numpy calls); a
# huge tie group (clustered codes, many duplicates) is cut to k rows before the sort.
_SHRINK_ABOVE = 8


def _shrink_tie_group(dist: np.ndarray, ids: np.ndarray, k: int) -> SearchResult:
    kth = np.partition(dist, k - 1)[k - 1]
    closer = dist < kth
    tied = ids[dist == kth]
    need = k - int(np.count_nonzero(closer))
    if need < tied.shape[0]:  # keep the smallest ids of the tie group
        tied = np.partition(tied, need - 1)[:need]
    ids = np.concatenate([ids[closer], tied])
    return np.concatenate([dist[closer], np.full(need, kth, np.int32)]), ids


def _fetch_size(k: int) -> int:
    # Fetching a margin past k costs little in the FAISS heap and, at 64 bits, makes the
    # tie-group range search rare (measured: k=10 -> 42 fetched leaves ~0% of queries widening).
    return max(3 * k, k + 32)


def _search_params(selector: faiss.IDSelector | None) -> faiss.SearchParameters | None:
    # The caller keeps `selector` referenced for as long as the parameters are used.
    if selector is None:
        return None
    params = faiss.SearchParameters()
    params.sel = selector
    return params


def _as_ids(ids: np.ndarray) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"ids must be a 1-D integer array, got dtype={arr.dtype} shape={arr.shape}"
        )
    if arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError("ids must fit in int64")
    out = np.ascontiguousarray(arr, dtype=np.int64)
    if out.size and int(out.min()) < 0:
        raise ValueError("ids must be non-negative (-1 is FAISS's 'no result' marker)")
    return out


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    # Same result as np.unique; measured about 4x faster on 10k int64 ids with numpy 2.4.
    ordered = np.sort(values)
    keep = np.ones(ordered.shape, dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


def _member(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Boolean mask: which `values` occur in the sorted array `sorted_ids`."""
    if sorted_ids.shape[0] == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_ids, values), sorted_ids.shape[0] - 1)
    return sorted_ids[pos] == values


def _one_query(query_code: np.ndarray) -> np.ndarray:
    arr = np.asarray(query_code)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] != 1:
        raise ValueError(f"expected one query code [bytes] or [1, bytes], got shape {arr.shape}")
    return arr
