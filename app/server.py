"""The FastAPI application factory. Migrations are never run here: run them before start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from app.api.limits import BodySizeLimit
from app.api.routes import admin, catalog, ops, search
from app.errors import install_error_handlers
from app.metrics import ServiceMetrics
from app.services.runtime import open_runtime
from app.settings import Settings, get_settings

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "Content-based medical image retrieval: deep hash codes searched in a FAISS binary index, "
    "re-ranked by content similarity, behind an out-of-distribution gate."
)


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loaded inside the serving process (never in a pre-forking parent): see FAISS/OpenMP.
        runtime = await run_in_threadpool(open_runtime, settings)
        app.state.runtime = runtime
        logger.info("ready: %d images, %d-bit codes", runtime.index.count, runtime.index.bits)
        try:
            yield
        finally:
            app.state.runtime = None
            runtime.close()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the checkpoint, encoder and index are loaded once by its lifespan."""
    settings = settings or get_settings()
    app = FastAPI(
        title="ACIR retrieval service", version="0.1.0", description=DESCRIPTION,
        lifespan=_lifespan(settings),
    )  # fmt: skip
    app.state.settings = settings
    app.state.metrics = ServiceMetrics()
    app.state.runtime = None
    install_error_handlers(app)
    app.middleware("http")(app.state.metrics.middleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )  # fmt: skip
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    for module in (search, admin, catalog, ops):
        app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory app.server:app_from_env`` (settings from ACIR_* env)."""
    return create_app(get_settings())
