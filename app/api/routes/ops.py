"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import MetricsDep
from app.api.schemas import HealthOut, ReadyOut, error_responses
from app.services.catalog import readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, summary="The process is alive")
def healthz() -> HealthOut:
    return HealthOut()


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Model, index and database are ready",
    responses={503: {"model": ReadyOut, "description": "Not ready"}},
)
def readyz(request: Request) -> JSONResponse:
    checks = readiness(getattr(request.app.state, "runtime", None))
    body = ReadyOut(ready=all(checks.values()), checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                     "description": "Prometheus text format"}, **error_responses(503)},
)  # fmt: skip
def metrics_endpoint(request: Request, metrics: MetricsDep) -> Response:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        metrics.indexed.set(runtime.index.count)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
