"""Start-up reconciliation: the database is the truth; the saved index is a cache of it.

The saved index is used when its manifest matches (bits, checkpoint) and its id set equals the
database's; otherwise it is rebuilt from the stored codes and saved again.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import ImageRecord
from app.services.features import FeatureStore, features_from_bytes
from index import BinaryIndex, BinaryIndexError

logger = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The stored data cannot be served with this checkpoint (e.g. encoded by another model)."""


def _read_rows(
    sessions: sessionmaker[Session], bits: int, checkpoint_sha256: str
) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    query = select(
        ImageRecord.id, ImageRecord.code, ImageRecord.feature, ImageRecord.checkpoint_sha256
    ).order_by(ImageRecord.id)
    with sessions() as session:
        rows = session.execute(query).all()
    stale = sum(1 for row in rows if row.checkpoint_sha256 != checkpoint_sha256)
    if stale:
        raise StartupError(
            f"{stale} indexed images were encoded with another checkpoint; "
            "re-index them with this one (or serve the checkpoint they were built with)"
        )
    ids = np.array([row.id for row in rows], dtype=np.int64)
    codes = np.frombuffer(b"".join(row.code for row in rows), dtype=np.uint8)
    if codes.size != len(rows) * (bits // 8):
        raise StartupError(f"stored codes are not all {bits}-bit codes")
    return ids, codes.reshape(len(rows), bits // 8), [row.feature for row in rows]


def _load_saved(directory: Path, bits: int, checkpoint_sha256: str, ids: np.ndarray) -> BinaryIndex:
    index = BinaryIndex.load(directory, bits, checkpoint_sha256)
    if not np.array_equal(index.ids(), ids):
        raise BinaryIndexError(f"saved index holds {index.count} ids, database {ids.size}")
    return index


def reconcile_index(
    sessions: sessionmaker[Session],
    directory: Path,
    bits: int,
    feature_dim: int,
    checkpoint_sha256: str,
) -> tuple[BinaryIndex, FeatureStore, str]:
    """(index, feature store, "loaded" | "rebuilt") consistent with the database."""
    ids, codes, blobs = _read_rows(sessions, bits, checkpoint_sha256)
    features = FeatureStore(feature_dim, capacity=max(1024, 2 * ids.size))
    try:
        features.add(ids, features_from_bytes(blobs, feature_dim))
    except ValueError as exc:
        raise StartupError(f"stored features do not match this checkpoint: {exc}") from exc
    try:
        index, source = _load_saved(directory, bits, checkpoint_sha256, ids), "loaded"
    except BinaryIndexError as exc:
        level = logging.WARNING if ids.size else logging.INFO
        logger.log(level, "rebuilding the index from the database (%d codes): %s", ids.size, exc)
        index, source = BinaryIndex.from_codes(bits, ids, codes), "rebuilt"
        index.save(directory, checkpoint_sha256)
    logger.info("index %s with %d codes", source, index.count)
    return index, features, source
