"""Inputs and outcomes of ingestion: upload items with caller metadata, per-file results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.errors import InvalidParameterError

IngestStatus = Literal["indexed", "duplicate", "rejected"]
_MAX_TEXT = 255


@dataclass(frozen=True)
class ImageMeta:
    """Caller-supplied metadata for one image."""

    external_id: str | None = None
    label: str | None = None
    collection: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("external_id", "label", "collection"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or len(value) > _MAX_TEXT):
                raise InvalidParameterError(
                    f"{name} must be a string of at most {_MAX_TEXT} characters"
                )
        if not isinstance(self.tags, dict):
            raise InvalidParameterError("tags must be a JSON object")


@dataclass(frozen=True)
class UploadItem:
    """Raw bytes of one image file plus its metadata."""

    data: bytes
    filename: str | None = None
    meta: ImageMeta = field(default_factory=ImageMeta)

    @classmethod
    def from_path(cls, path: Path, meta: ImageMeta | None = None) -> UploadItem:
        return cls(Path(path).read_bytes(), Path(path).name, meta or ImageMeta())


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one file: a new id, an existing id (duplicate) or a refusal."""

    position: int
    filename: str | None
    status: IngestStatus
    id: int | None = None
    error: str | None = None
    detail: str | None = None
    http_status: int | None = None
    ood_score: float | None = None

    @property
    def duplicate(self) -> bool:
        return self.status == "duplicate"
