"""SQLAlchemy 2 models. The database is the source of truth; the FAISS index is derived from it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, LargeBinary, String, UniqueConstraint, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ImageRecord(Base):
    """One indexed image: metadata, content hash, hash code and reduced re-ranking feature.

    ``id`` is also the FAISS id. No pixels and no identifying DICOM tags are stored.
    """

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("sha256", name="uq_images_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    external_id: Mapped[str | None] = mapped_column(String(255), index=True)
    label: Mapped[str | None] = mapped_column(String(255), index=True)
    collection: Mapped[str | None] = mapped_column(String(255), index=True)
    modality: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sha256: Mapped[str] = mapped_column(String(64))
    code: Mapped[bytes] = mapped_column(LargeBinary)
    feature: Mapped[bytes] = mapped_column(LargeBinary)  # float16 little-endian, L2-normalised
    checkpoint_sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class AuditEvent(Base):
    """Who did what and when: searches (with result ids), ingestions, deletions, OOD rejections."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    key_id: Mapped[str | None] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    image_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    result_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    ood_score: Mapped[float | None] = mapped_column(Float)
    request_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
