"""Tests for index.binary_index: exact (distance, id) order, stable ids, filters, persistence."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

from index import storage
from index._rwlock import ReadWriteLock
from index.binary_index import BinaryIndex
from index.codes import hamming_distances
from index.errors import DuplicateIdError, IndexCorrupt, IndexMismatch, IndexMissing

CKPT = "a" * 64


@pytest.fixture(autouse=True)
def _one_faiss_thread() -> Iterator[None]:
    # The test machine has 2 shared cores; OpenMP teams from concurrent searches oversubscribe them.
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(previous)


def _data(
    seed: int, n: int, bits: int = 64, n_distinct: int | None = None
) -> tuple[np.ndarray, ...]:
    """Unique shuffled ids and random codes; `n_distinct` repeats few codes to force ties."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(50 * n)[:n].astype(np.int64)
    pool = rng.integers(0, 256, (n_distinct or n, bits // 8), dtype=np.uint8)
    codes = pool[rng.integers(0, pool.shape[0], n)] if n_distinct else pool
    return ids, np.ascontiguousarray(codes)


def _brute(
    queries: np.ndarray, ids: np.ndarray, codes: np.ndarray, k: int
) -> tuple[np.ndarray, ...]:
    dist = hamming_distances(queries, codes)
    order = np.stack([np.lexsort((ids, row))[:k] for row in dist])
    return np.take_along_axis(dist, order, axis=1), ids[order]


def _assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, ...]) -> None:
    assert got[0].dtype == np.int32 and got[1].dtype == np.int64
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("bits", [16, 64, 128])
@pytest.mark.parametrize("k", [1, 10, 57, 400])
def test_search_equals_brute_force(bits: int, k: int) -> None:
    ids, codes = _data(seed=bits, n=300, bits=bits)
    queries = _data(seed=bits + 1, n=6, bits=bits)[1]
    index = BinaryIndex.from_codes(bits, ids, codes)
    _assert_same(index.search(queries, k), _brute(queries, ids, codes, min(k, 300)))


@pytest.mark.parametrize("bits", [16, 64])
def test_many_exact_ties_do_not_depend_on_insertion_order(bits: int) -> None:
    ids, codes = _data(seed=3, n=400, bits=bits, n_distinct=5)
    queries = np.concatenate([codes[:3], _data(seed=4, n=3, bits=bits)[1]])
    want = _brute(queries, ids, codes, 25)
    for seed in range(4):
        perm = np.random.default_rng(seed).permutation(ids.shape[0])
        index = BinaryIndex(bits)
        for chunk in np.array_split(perm, 3):  # several adds, shuffled
            index.add(ids[chunk], codes[chunk])
        _assert_same(index.search(queries, 25), want)
        dist, cand = index.search_candidates(queries[0], 25)
        _assert_same((dist[None], cand[None]), (want[0][:1], want[1][:1]))


def test_ids_stable_after_remove() -> None:
    ids, codes = _data(seed=5, n=200)
    index = BinaryIndex.from_codes(64, ids, codes)
    gone = ids[::3]
    assert index.remove(np.concatenate([gone, [10**12]])) == gone.shape[0]
    assert index.remove(gone) == 0
    keep = ~np.isin(ids, gone)
    assert index.count == int(keep.sum())
    assert not index.contains(int(gone[0])) and index.contains(int(ids[keep][0]))
    np.testing.assert_array_equal(index.ids(), np.sort(ids[keep]))
    got = index.search(codes, 200)
    _assert_same(got, _brute(codes, ids[keep], codes[keep], int(keep.sum())))
    assert not np.isin(got[1], gone).any()
    # A removed id can be added again (with a new code) and is then found under that id.
    index.add(gone[:1], codes[1:2])
    assert index.search(codes[1:2], 2)[1][0].tolist() == sorted([int(ids[1]), int(gone[0])])


def test_duplicate_ids_rejected_and_index_unchanged() -> None:
    ids, codes = _data(seed=6, n=20)
    index = BinaryIndex.from_codes(64, ids, codes)
    with pytest.raises(DuplicateIdError, match="already"):
        index.add(np.array([10**9, ids[4]]), codes[:2])
    with pytest.raises(DuplicateIdError, match="within"):
        index.add(np.array([10**9, 10**9]), codes[:2])
    assert index.count == 20 and not index.contains(10**9)


@pytest.mark.parametrize(
    ("ids", "codes"),
    [
        (np.arange(2), np.zeros((2, 8), np.int8)),  # dtype
        (np.arange(2), np.zeros((2, 16), np.uint8)),  # code size
        (np.arange(3), np.zeros((2, 8), np.uint8)),  # lengths differ
        (np.array([0, -1]), np.zeros((2, 8), np.uint8)),  # negative id
        (np.array([0.0, 1.0]), np.zeros((2, 8), np.uint8)),  # float ids
    ],
)
def test_add_rejects_bad_input(ids: np.ndarray, codes: np.ndarray) -> None:
    with pytest.raises(ValueError):
        BinaryIndex(64).add(ids, codes)


def test_constructor_and_search_argument_checks() -> None:
    with pytest.raises(ValueError):
        BinaryIndex(12)
    index = BinaryIndex(64)
    assert (index.bits, index.code_size, index.count) == (64, 8, 0)
    dist, ids = index.search(np.zeros((2, 8), np.uint8), 5)
    assert dist.shape == ids.shape == (2, 0)
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 8), np.uint8), 0)
    index.add(np.arange(3), np.zeros((3, 8), np.uint8))
    assert index.search(np.zeros((0, 8), np.uint8), 5)[1].shape == (0, 0)
    with pytest.raises(ValueError):
        index.search_candidates(np.zeros((2, 8), np.uint8), 3)


def test_allowed_ids_filter() -> None:
    ids, codes = _data(seed=7, n=300, n_distinct=20)
    index = BinaryIndex.from_codes(64, ids, codes)
    queries = codes[:4]
    allowed = np.concatenate([ids[::4], [10**12]])  # an unknown id is ignored
    subset = np.isin(ids, allowed)
    _assert_same(
        index.search(queries, 30, allowed), _brute(queries, ids[subset], codes[subset], 30)
    )
    few = ids[:3]
    _assert_same(index.search(queries, 30, few), _brute(queries, ids[:3], codes[:3], 3))
    assert index.search(queries, 30, np.array([10**12], np.int64))[1].shape == (4, 0)


def test_search_radius() -> None:
    ids, codes = _data(seed=8, n=300, bits=16)
    index = BinaryIndex.from_codes(16, ids, codes)
    dist, got = index.search_radius(codes[0], 5)
    all_dist = hamming_distances(codes[:1], codes)[0]
    inside = np.flatnonzero(all_dist <= 5)
    order = inside[np.lexsort((ids[inside], all_dist[inside]))]
    np.testing.assert_array_equal(got, ids[order])
    np.testing.assert_array_equal(dist, all_dist[order])


def test_save_load_round_trip(tmp_path: Path) -> None:
    ids, codes = _data(seed=9, n=150, n_distinct=30)
    index = BinaryIndex.from_codes(64, ids, codes)
    index.remove(ids[:10])
    index.save(tmp_path, CKPT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.faiss", "manifest.json"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["bits"] == 64 and manifest["count"] == 140
    assert manifest["checkpoint_sha256"] == CKPT
    assert manifest["ids_sha256"] == storage.id_set_sha256(ids[10:])
    loaded = BinaryIndex.load(tmp_path, 64, CKPT)
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    for k in (5, 140):
        _assert_same(loaded.search(codes, k), index.search(codes, k))
    index.add(ids[:1], codes[:1])
    index.save(tmp_path, CKPT)  # overwrite in place
    assert BinaryIndex.load(tmp_path, 64, CKPT).count == 141


def test_failed_save_keeps_old_files_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, codes = _data(seed=10, n=50)
    BinaryIndex.from_codes(64, ids, codes).save(tmp_path, CKPT)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def fail(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(storage.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        BinaryIndex.from_codes(64, ids[:5], codes[:5]).save(tmp_path, CKPT)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert BinaryIndex.load(tmp_path, 64, CKPT).count == 50


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    ids, codes = _data(seed=11, n=40)
    BinaryIndex.from_codes(64, ids, codes).save(tmp_path, CKPT)
    return tmp_path


def _edit_manifest(directory: Path, **changes: object) -> None:
    path = directory / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_load_mismatch_bits_and_checkpoint(saved: Path) -> None:
    with pytest.raises(IndexMismatch, match="bit"):
        BinaryIndex.load(saved, 128, CKPT)
    with pytest.raises(IndexMismatch, match="checkpoint"):
        BinaryIndex.load(saved, 64, "b" * 64)


@pytest.mark.parametrize("name", ["index.faiss", "manifest.json"])
def test_load_missing_file(saved: Path, name: str) -> None:
    (saved / name).unlink()
    with pytest.raises(IndexMissing):
        BinaryIndex.load(saved, 64, CKPT)


def test_load_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing):
        BinaryIndex.load(tmp_path / "nope", 64, CKPT)


def test_load_tampered_index_file(saved: Path) -> None:
    data = bytearray((saved / "index.faiss").read_bytes())
    data[-3] ^= 0xFF
    (saved / "index.faiss").write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="checksum"):
        BinaryIndex.load(saved, 64, CKPT)


def test_load_garbage_index_with_matching_checksum(saved: Path) -> None:
    garbage = b"not a faiss index"
    (saved / "index.faiss").write_bytes(garbage)
    _edit_manifest(saved, index_sha256=storage.sha256_bytes(garbage))
    with pytest.raises(IndexCorrupt, match="deserialise"):
        BinaryIndex.load(saved, 64, CKPT)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"count": 41}, IndexCorrupt),
        ({"ids_sha256": "0" * 64}, IndexCorrupt),
        ({"bits": "64"}, IndexCorrupt),
        ({"format_version": 99}, IndexMismatch),
    ],
)
def test_load_tampered_manifest(saved: Path, changes: dict, error: type) -> None:
    _edit_manifest(saved, **changes)
    with pytest.raises(error):
        BinaryIndex.load(saved, 64, CKPT)


def test_load_unparsable_manifest(saved: Path) -> None:
    (saved / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorrupt):
        BinaryIndex.load(saved, 64, CKPT)


def test_readers_share_the_lock_writers_do_not() -> None:
    lock = ReadWriteLock()
    both_inside = threading.Barrier(2, timeout=5)

    def reader() -> None:
        with lock.read():
            both_inside.wait()  # times out (BrokenBarrierError) if readers excluded each other

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not both_inside.broken
    events: list[str] = []
    with lock.read():
        writer = threading.Thread(target=_write, args=(lock, events))
        writer.start()
        writer.join(timeout=0.2)
        assert writer.is_alive() and events == []  # the writer waits for the reader
    writer.join(timeout=5)
    assert events == ["write"]


def _write(lock: ReadWriteLock, events: list[str]) -> None:
    with lock.write():
        events.append("write")


def test_concurrent_searches_and_updates() -> None:
    ids, codes = _data(seed=12, n=400)
    index = BinaryIndex.from_codes(64, ids[:200], codes[:200])
    errors: list[BaseException] = []

    def search() -> None:
        try:
            for _ in range(30):
                dist, found = index.search(codes[:3], 10)
                assert dist.shape == found.shape == (3, 10)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    readers = [threading.Thread(target=search) for _ in range(2)]
    for t in readers:
        t.start()
    for start in range(200, 400, 20):
        index.add(ids[start : start + 20], codes[start : start + 20])
        index.remove(ids[start - 200 : start - 190])
    for t in readers:
        t.join()
    assert not errors
    keep = np.isin(ids, index.ids())
    _assert_same(index.search(codes, 10), _brute(codes, ids[keep], codes[keep], 10))


@pytest.mark.parametrize("n_candidates", [1, 7, 25, 90, 400])
def test_search_candidates_single_query_path_equals_brute_force(n_candidates: int) -> None:
    # Few distinct codes: tie groups far larger than n, cut at the boundary on most queries.
    ids, codes = _data(seed=13, n=300, n_distinct=6)
    queries = np.concatenate([codes[:3], _data(seed=14, n=3)[1]])
    allowed = ids[::3]
    subset = np.isin(ids, allowed)
    index = BinaryIndex(64)
    perm = np.random.default_rng(15).permutation(ids.shape[0])
    index.add(ids[perm], codes[perm])
    for query in queries:
        want = _brute(query[None], ids, codes, min(n_candidates, 300))
        dist, got = index.search_candidates(query, n_candidates)
        _assert_same((dist[None], got[None]), want)
        want = _brute(query[None], ids[subset], codes[subset], min(n_candidates, 100))
        dist, got = index.search_candidates(query, n_candidates, allowed)
        _assert_same((dist[None], got[None]), want)
    with pytest.raises(ValueError):
        index.search_candidates(queries[0], 0)


def test_fast_path_with_ascending_ids_is_exact_through_remove_and_reload(tmp_path: Path) -> None:
    # The service adds database ids, which only grow: FAISS's counting selection then already
    # returns ties by id. Check it against brute force, also after removals and a reload.
    ids, codes = _data(seed=11, n=600, n_distinct=6)
    order = np.argsort(ids)
    ids, codes = ids[order], codes[order]
    index = BinaryIndex(64)
    for chunk in np.array_split(np.arange(600), 4):
        index.add(ids[chunk][::-1], codes[chunk][::-1])  # reversed within a batch is fine
    assert index.stored_in_id_order
    queries = np.concatenate([codes[:3], _data(seed=12, n=3)[1]])
    _assert_same(index.search(queries, 40), _brute(queries, ids, codes, 40))
    keep = np.ones(600, bool)
    keep[::5] = False
    index.remove(ids[~keep])
    want = _brute(queries, ids[keep], codes[keep], 40)
    _assert_same(index.search(queries, 40), want)
    index.save(tmp_path, CKPT)
    loaded = BinaryIndex.load(tmp_path, 64, CKPT)
    assert loaded.stored_in_id_order
    dist, cand = loaded.search_candidates(queries[0], 40)
    _assert_same((dist[None], cand[None]), (want[0][:1], want[1][:1]))


def test_out_of_order_ids_switch_to_the_exact_fallback() -> None:
    ids, codes = _data(seed=13, n=300, n_distinct=4)
    index = BinaryIndex(64)
    index.add(np.sort(ids)[150:], codes[150:])
    index.add(np.sort(ids)[:150], codes[:150])  # smaller ids after larger ones
    assert not index.stored_in_id_order
    stored_ids = np.concatenate([np.sort(ids)[150:], np.sort(ids)[:150]])
    stored_codes = np.concatenate([codes[150:], codes[:150]])
    queries = codes[:4]
    _assert_same(index.search(queries, 30), _brute(queries, stored_ids, stored_codes, 30))


def test_search_candidates_query_forms_and_in_order_filter() -> None:
    # The in-order fast path checks the usual 1-D query in one go; other forms take the general
    # checks and give the same answer; a filter on an in-order index stays exact.
    ids, codes = _data(seed=21, n=400, n_distinct=8)
    order = np.argsort(ids)
    ids, codes = ids[order], codes[order]
    assert BinaryIndex(64).search_candidates(codes[0], 5)[1].shape == (0,)
    index = BinaryIndex.from_codes(64, ids, codes)
    assert index.stored_in_id_order
    query = codes[3]
    want = _brute(query[None], ids, codes, 30)
    wide = np.zeros((1, 16), np.uint8)
    wide[0, ::2] = query
    for form in (query, query[None], wide[:, ::2], query.tolist()):
        dist, got = index.search_candidates(np.asarray(form, np.uint8), 30)
        _assert_same((dist[None], got[None]), want)
    allowed = ids[1::4]
    subset = np.isin(ids, allowed)
    dist, got = index.search_candidates(query, 30, allowed)
    _assert_same((dist[None], got[None]), _brute(query[None], ids[subset], codes[subset], 30))
    for bad in (query.astype(np.int16), codes[:2], np.zeros(4, np.uint8)):
        with pytest.raises(ValueError):
            index.search_candidates(bad, 30)
