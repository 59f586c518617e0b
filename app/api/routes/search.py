"""POST /search: query by image."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from app.api.deps import MetricsDep, ReaderDep, RuntimeDep
from app.api.schemas import (
    HitMetadata,
    OODInfo,
    SearchHitOut,
    SearchResponse,
    Timings,
    error_responses,
    finite,
)
from app.errors import ServiceError
from app.services.search import Filters, SearchOutcome, search_image

router = APIRouter(tags=["search"])


def _to_schema(outcome: SearchOutcome) -> SearchResponse:
    results = [
        SearchHitOut(
            id=h.id, external_id=h.external_id, label=h.label,
            metadata=HitMetadata(**h.metadata), hamming=h.hamming,
            similarity=h.similarity, rank=h.rank,
        )
        for h in outcome.hits
    ]  # fmt: skip
    ood = OODInfo(
        score=finite(outcome.ood_score), threshold=finite(outcome.threshold),
        detector=outcome.detector,
    )  # fmt: skip
    timings = Timings(**{name: outcome.timings_ms.get(name, 0.0) for name in Timings.model_fields})
    return SearchResponse(results=results, ood=ood, timings_ms=timings)


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Find the indexed images most similar to an uploaded image",
    responses=error_responses(400, 401, 413, 415, 422, 503),
)
def search(
    rt: RuntimeDep,
    metrics: MetricsDep,
    who: ReaderDep,
    file: Annotated[UploadFile, File(description="PNG, JPEG, TIFF or DICOM image")],
    k: Annotated[int, Form(ge=1, description="number of results (at most max_k)")] = 10,
    label: Annotated[str | None, Form(max_length=255, description="only this label")] = None,
    collection: Annotated[
        str | None, Form(max_length=255, description="only this collection")
    ] = None,
) -> SearchResponse:
    data = file.file.read()
    try:
        outcome = search_image(rt, data, k, Filters(label, collection), who.key_id)
    except ServiceError as exc:
        metrics.rejections.labels("/search", exc.error).inc()
        if "score" in exc.extra:
            exc.extra = {**exc.extra, "score": finite(exc.extra["score"]),
                         "threshold": finite(exc.extra["threshold"])}  # fmt: skip
        raise
    metrics.observe_stages(outcome.timings_ms)
    return _to_schema(outcome)
