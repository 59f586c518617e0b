"""On-disk layout of a saved index: ``index.faiss`` plus ``manifest.json``, both written atomically.

The index file is written first and the manifest last. The manifest records the SHA-256 of the
index file, so a crash between the two writes (new index, old manifest) is detected on load as
`IndexCorrupt` rather than silently serving a stale or half-written index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import IndexCorrupt, IndexMismatch, IndexMissing

FORMAT_VERSION = 1
INDEX_TYPE = "IndexBinaryIDMap2(IndexBinaryFlat)"
INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class IndexManifest:
    """Self-description of a saved index."""

    format_version: int
    index_type: str
    bits: int
    count: int
    checkpoint_sha256: str
    ids_sha256: str
    index_sha256: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> IndexManifest:
        try:
            raw: Any = json.loads(text)
            values = {field.name: raw[field.name] for field in fields(cls)}
        except (ValueError, TypeError, KeyError) as exc:
            raise IndexCorrupt(f"unreadable {MANIFEST_FILE}: {exc}") from exc
        for field in fields(cls):
            wanted = int if field.type == "int" else str
            value = values[field.name]
            if not isinstance(value, wanted) or isinstance(value, bool):
                raise IndexCorrupt(f"{MANIFEST_FILE}: {field.name} must be {wanted.__name__}")
        return cls(**values)


def id_set_sha256(ids: np.ndarray) -> str:
    """SHA-256 of the sorted int64 id set; lets a caller compare the index with the database."""
    ordered = np.sort(np.asarray(ids, dtype=np.int64))
    return hashlib.sha256(ordered.astype("<i8").tobytes()).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same directory and `os.replace`."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(path.parent)


def save_files(directory: Path, payload: bytes, manifest: IndexManifest) -> None:
    """Write the index bytes, then the manifest (last, so it only ever describes a whole file)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / INDEX_FILE, payload)
    write_atomic(directory / MANIFEST_FILE, manifest.to_json().encode("utf-8"))


def read_files(directory: Path) -> tuple[IndexManifest, bytes]:
    """Read and cross-check the manifest and index bytes (format version and file checksum)."""
    manifest_path, index_path = directory / MANIFEST_FILE, directory / INDEX_FILE
    for path in (manifest_path, index_path):
        if not path.is_file():
            raise IndexMissing(f"missing index file: {path}")
    manifest = IndexManifest.from_json(manifest_path.read_text(encoding="utf-8"))
    if manifest.format_version != FORMAT_VERSION or manifest.index_type != INDEX_TYPE:
        raise IndexMismatch(
            f"unsupported index format {manifest.format_version}/{manifest.index_type!r}, "
            f"expected {FORMAT_VERSION}/{INDEX_TYPE!r}"
        )
    payload = index_path.read_bytes()
    if sha256_bytes(payload) != manifest.index_sha256:
        raise IndexCorrupt(f"{index_path} does not match the checksum in its manifest")
    return manifest, payload


def check_expected(manifest: IndexManifest, bits: int, checkpoint_sha256: str) -> None:
    """Refuse an index built for another code length or another model checkpoint."""
    if manifest.bits != bits:
        raise IndexMismatch(f"index has {manifest.bits}-bit codes, expected {bits}")
    if manifest.checkpoint_sha256 != checkpoint_sha256:
        raise IndexMismatch(
            f"index was built with checkpoint {manifest.checkpoint_sha256[:12]}…, "
            f"expected {checkpoint_sha256[:12]}…"
        )


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not supported on every platform, hence best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
