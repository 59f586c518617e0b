"""GET /images/{id} and GET /stats."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path

from app.api.deps import ReaderDep, RuntimeDep
from app.api.schemas import ImageOut, StatsOut, error_responses, finite
from app.services.catalog import get_image, service_stats

router = APIRouter(tags=["catalog"])


@router.get(
    "/images/{image_id}",
    response_model=ImageOut,
    summary="Stored metadata of one image",
    responses=error_responses(401, 404, 422, 503),
)
def read_image(
    rt: RuntimeDep, _: ReaderDep, image_id: Annotated[int, Path(description="image id")]
) -> ImageOut:
    return ImageOut(**asdict(get_image(rt, image_id)))


@router.get(
    "/stats",
    response_model=StatsOut,
    summary="Index size, code length, checkpoint and OOD gate",
    responses=error_responses(401, 503),
)
def stats(rt: RuntimeDep, _: ReaderDep) -> StatsOut:
    values = asdict(service_stats(rt))
    values["ood_threshold"] = finite(values["ood_threshold"])
    return StatsOut(**values)
