"""Pydantic request/response models; every route declares its response and error schemas."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def finite(value: float) -> float | None:
    """JSON has no inf/NaN: report them as null."""
    return value if math.isfinite(value) else None


class ErrorBody(BaseModel):
    """Every 4xx/5xx body. Some errors add fields (e.g. ``score`` and ``threshold`` for OOD)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={
        "examples": [{"error": "unsupported_media_type", "detail": "not a supported image"}]
    })  # fmt: skip
    error: str = Field(description="stable machine-readable code")
    detail: str = Field(description="human-readable explanation")


class OODRejection(ErrorBody):
    score: float | None = Field(None, description="OOD score of the query (higher = more OOD)")
    threshold: float | None = None
    detector: str | None = None


class ImageMetadataIn(BaseModel):
    """Metadata for one uploaded file (an element of the ``metadata`` JSON list)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"external_id": "case-17/slice-4", "label": "T1", "collection": "atlas",
                      "tags": {"body_part": "brain"}}]
    })  # fmt: skip
    external_id: str | None = Field(None, max_length=255)
    label: str | None = Field(None, max_length=255)
    collection: str | None = Field(None, max_length=255)
    tags: dict[str, Any] = Field(default_factory=dict)


class HitMetadata(BaseModel):
    collection: str | None
    modality: str | None
    tags: dict[str, Any]
    width: int | None
    height: int | None


class SearchHitOut(BaseModel):
    id: int
    external_id: str | None
    label: str | None
    metadata: HitMetadata
    hamming: int = Field(description="Hamming distance between the hash codes")
    similarity: float = Field(description="content similarity in [0, 1] used for re-ranking")
    rank: int = Field(description="1-based position")


class OODInfo(BaseModel):
    score: float | None
    threshold: float | None
    detector: str


class Timings(BaseModel):
    decode: float
    encode: float
    ood: float
    search: float
    rerank: float
    metadata: float
    total: float


class SearchResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "results": [{"id": 12, "external_id": "case-17/slice-4", "label": "T1", "rank": 1,
                     "metadata": {"collection": "atlas", "modality": "MR", "tags": {},
                                  "width": 256, "height": 256},
                     "hamming": 3, "similarity": 0.94}],
        "ood": {"score": 0.012, "threshold": 0.05, "detector": "reconstruction"},
        "timings_ms": {"decode": 0.4, "encode": 11.0, "ood": 0.01, "search": 0.2,
                       "rerank": 0.1, "metadata": 0.8, "total": 12.9}}]})  # fmt: skip
    results: list[SearchHitOut]
    ood: OODInfo
    timings_ms: Timings


class IngestResult(BaseModel):
    position: int = Field(description="index of the file in the request")
    filename: str | None
    status: Literal["indexed", "duplicate", "rejected"]
    id: int | None = Field(None, description="new or existing image id")
    duplicate: bool
    error: str | None = Field(None, description="why the file was refused")
    detail: str | None = None
    http_status: int | None = Field(None, description="status this refusal maps to")
    ood_score: float | None = None


class IngestResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "indexed": 1, "duplicates": 0, "rejected": 1, "ids": [12],
        "results": [
            {"position": 0, "filename": "a.png", "status": "indexed", "id": 12,
             "duplicate": False},
            {"position": 1, "filename": "cat.jpg", "status": "rejected", "duplicate": False,
             "error": "out_of_distribution", "detail": "OOD score 0.3 exceeds 0.05",
             "http_status": 422, "ood_score": 0.3}]}]})  # fmt: skip
    indexed: int
    duplicates: int
    rejected: int
    ids: list[int] = Field(description="ids of indexed and duplicate files, in request order")
    results: list[IngestResult]


class ImageOut(BaseModel):
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


class StatsOut(BaseModel):
    count: int = Field(description="codes in the index")
    database_count: int
    bits: int
    feature_dim: int
    checkpoint: str
    checkpoint_sha256: str
    index_type: str
    index_source: Literal["loaded", "rebuilt"]
    ood_detector: str
    ood_threshold: float | None


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    ready: bool
    checks: dict[str, bool]


class DeletedOut(BaseModel):
    id: int
    deleted: Literal[True] = True


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting the error body for each status code."""
    text = {400: "Unreadable, corrupt or empty image", 401: "Missing or unknown API key",
            403: "API key lacks the admin role", 404: "Unknown id", 413: "Body or image too large",
            415: "Unsupported file type", 422: "Invalid parameters or out-of-distribution image",
            503: "Not ready"}  # fmt: skip
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"model": OODRejection if code == 422 else ErrorBody, "description": text[code]}
    return out
