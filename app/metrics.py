"""Prometheus metrics with a registry per app (several apps in one process never collide)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import Response

_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    """Request counts and latency, per-stage search latency, refusals and index size."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "acir_requests_total", "HTTP requests", ["method", "route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "acir_request_seconds", "HTTP request latency", ["method", "route"],
            buckets=_STAGE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.stages = Histogram(
            "acir_search_stage_seconds", "Search latency per stage", ["stage"],
            buckets=_STAGE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.rejections = Counter(
            "acir_rejections_total", "Refused inputs by reason", ["route", "reason"],
            registry=self.registry,
        )  # fmt: skip
        self.ingested = Counter(
            "acir_ingested_total", "Files ingested by outcome", ["status"], registry=self.registry
        )
        self.indexed = Gauge("acir_indexed_images", "Codes in the index", registry=self.registry)

    def observe_stages(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stages.labels(stage=stage).observe(ms / 1000.0)

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        began = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = getattr(request.scope.get("route"), "path", "unmatched")
            self.requests.labels(request.method, route, str(status)).inc()
            self.latency.labels(request.method, route).observe(time.perf_counter() - began)
            if status >= 400:
                self.rejections.labels(route, f"http_{status}").inc()
