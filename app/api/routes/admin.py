"""Admin routes: POST /index (ingest) and DELETE /index/{id}."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, UploadFile
from pydantic import ValidationError

from app.api.deps import AdminDep, MetricsDep, RuntimeDep
from app.api.schemas import (
    DeletedOut,
    ImageMetadataIn,
    IngestResponse,
    IngestResult,
    error_responses,
)
from app.errors import InvalidParameterError
from app.services.catalog import delete_image
from app.services.ingestion import ImageMeta, IngestOutcome, UploadItem, ingest_images

router = APIRouter(tags=["admin"])


def parse_metadata(raw: str | None, n_files: int) -> list[ImageMeta]:
    """The ``metadata`` form field: a JSON list aligned with the files (an object for one file)."""
    if raw is None or not raw.strip():
        return [ImageMeta() for _ in range(n_files)]
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidParameterError(f"metadata is not valid JSON: {exc.msg}") from exc
    entries = [value] if isinstance(value, dict) else value
    if not isinstance(entries, list) or len(entries) != n_files:
        raise InvalidParameterError(
            f"metadata must be a JSON list with one object per file ({n_files})"
        )
    try:
        parsed = [ImageMetadataIn.model_validate(entry) for entry in entries]
    except ValidationError as exc:
        raise InvalidParameterError(f"invalid metadata: {exc.errors()[0]['msg']}") from exc
    return [ImageMeta(p.external_id, p.label, p.collection, p.tags) for p in parsed]


def _result(outcome: IngestOutcome) -> IngestResult:
    return IngestResult(
        position=outcome.position, filename=outcome.filename, status=outcome.status,
        id=outcome.id, duplicate=outcome.duplicate, error=outcome.error, detail=outcome.detail,
        http_status=outcome.http_status, ood_score=outcome.ood_score,
    )  # fmt: skip


@router.post(
    "/index",
    response_model=IngestResponse,
    summary="Add images to the index (admin); each file is indexed, a duplicate, or refused",
    responses=error_responses(401, 403, 413, 422, 503),
)
def index_images(
    rt: RuntimeDep,
    metrics: MetricsDep,
    who: AdminDep,
    files: Annotated[list[UploadFile], File(description="one or more image files")],
    metadata: Annotated[
        str | None, Form(description="JSON list of {external_id, label, collection, tags}")
    ] = None,
) -> IngestResponse:
    if len(files) > rt.settings.max_files_per_request:
        raise InvalidParameterError(
            f"at most {rt.settings.max_files_per_request} files per request"
        )
    metas = parse_metadata(metadata, len(files))
    items = [UploadItem(f.file.read(), f.filename, m) for f, m in zip(files, metas, strict=True)]
    outcomes = ingest_images(rt, items, key_id=who.key_id)
    for outcome in outcomes:
        metrics.ingested.labels(outcome.status).inc()
        if outcome.error:
            metrics.rejections.labels("/index", outcome.error).inc()
    return IngestResponse(
        indexed=sum(o.status == "indexed" for o in outcomes),
        duplicates=sum(o.status == "duplicate" for o in outcomes),
        rejected=sum(o.status == "rejected" for o in outcomes),
        ids=[o.id for o in outcomes if o.id is not None],
        results=[_result(o) for o in outcomes],
    )


@router.delete(
    "/index/{image_id}",
    response_model=DeletedOut,
    summary="Remove an image from the database and the index (admin)",
    responses=error_responses(401, 403, 404, 422, 503),
)
def remove_image(
    rt: RuntimeDep, who: AdminDep, image_id: Annotated[int, Path(description="image id")]
) -> DeletedOut:
    delete_image(rt, image_id, who.key_id)
    return DeletedOut(id=image_id)
