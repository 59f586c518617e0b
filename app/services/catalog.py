"""Read and delete single images; service statistics and readiness."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select

from app.db.models import ImageRecord
from app.errors import NotFoundError
from app.services.audit import add_event
from app.services.ingestion import persist_index
from app.services.runtime import Runtime
from index.storage import INDEX_TYPE


@dataclass(frozen=True)
class ImageInfo:
    id: int
    external_id: str | None
    label: str | None
    collection: str | None
    modality: str | None
    tags: dict[str, Any]
    sha256: str
    width: int | None
    height: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ServiceStats:
    count: int
    database_count: int
    bits: int
    feature_dim: int
    checkpoint: str
    checkpoint_sha256: str
    index_type: str
    index_source: str
    ood_detector: str
    ood_threshold: float


def get_image(rt: Runtime, image_id: int) -> ImageInfo:
    with rt.sessions() as session:
        row = session.get(ImageRecord, image_id)
        if row is None:
            raise NotFoundError(f"no image with id {image_id}", id=image_id)
        return ImageInfo(
            row.id, row.external_id, row.label, row.collection, row.modality, dict(row.tags or {}),
            row.sha256, row.width, row.height, row.created_at, row.updated_at,
        )  # fmt: skip


def delete_image(rt: Runtime, image_id: int, key_id: str | None = None) -> None:
    """Remove the row (and audit it) in one commit, then the index entry; 404 if unknown."""
    with rt.write_lock:
        with rt.sessions() as session:
            row = session.get(ImageRecord, image_id)
            if row is None:
                raise NotFoundError(f"no image with id {image_id}", id=image_id)
            session.delete(row)
            add_event(session, "delete", key_id, image_ids=[image_id])
            session.commit()
        ids = np.array([image_id], dtype=np.int64)
        rt.index.remove(ids)
        rt.features.remove(ids)
        rt.filters.invalidate()
        persist_index(rt)


def service_stats(rt: Runtime) -> ServiceStats:
    with rt.sessions() as session:
        db_count = int(session.scalar(select(func.count()).select_from(ImageRecord)) or 0)
    return ServiceStats(
        count=rt.index.count, database_count=db_count, bits=rt.index.bits,
        feature_dim=rt.encoder.feature_dim, checkpoint=rt.settings.checkpoint.name,
        checkpoint_sha256=rt.checkpoint_sha256, index_type=INDEX_TYPE,
        index_source=rt.index_source, ood_detector=rt.encoder.ood_detector,
        ood_threshold=rt.encoder.ood_threshold,
    )  # fmt: skip


def readiness(rt: Runtime | None) -> dict[str, bool]:
    """Which parts are ready: model, index, database."""
    if rt is None:
        return {"model": False, "index": False, "database": False}
    return {
        "model": True,
        "index": rt.index.count == len(rt.features),
        "database": rt.database_ok(),
    }
