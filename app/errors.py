"""Expected failures: one base class carrying HTTP status and error code, rendered by one handler.

Services raise these; they never raise ``HTTPException``. Anything else reaching the client is a
bug and is rendered as a 500 ``internal_error`` without internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """An expected failure with a status, a stable machine-readable code and a human detail."""

    status_code = 400
    error = "bad_request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "detail": self.detail, **self.extra}


class BadImageError(ServiceError):
    status_code, error = 400, "unreadable_image"


class EmptyFileError(ServiceError):
    status_code, error = 400, "empty_file"


class UnauthorizedError(ServiceError):
    status_code, error = 401, "unauthorized"


class ForbiddenError(ServiceError):
    status_code, error = 403, "forbidden"


class NotFoundError(ServiceError):
    status_code, error = 404, "not_found"


class PayloadTooLargeError(ServiceError):
    status_code, error = 413, "payload_too_large"


class ImageTooLargeError(ServiceError):
    status_code, error = 413, "image_too_large"


class UnsupportedMediaTypeError(ServiceError):
    status_code, error = 415, "unsupported_media_type"


class InvalidParameterError(ServiceError):
    status_code, error = 422, "invalid_parameter"


class OutOfDistributionError(ServiceError):
    status_code, error = 422, "out_of_distribution"


class ServiceUnavailableError(ServiceError):
    status_code, error = 503, "not_ready"


class IndexWriteFailedError(ServiceError):
    status_code, error = 503, "index_write_failed"


def _render(exc: ServiceError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return _render(exc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    body = {"error": "validation_error", "detail": detail or "invalid request", "errors": errors}
    return JSONResponse(body, status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    body = {"error": codes.get(exc.status_code, "http_error"), "detail": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    body = {"error": "internal_error", "detail": "unexpected server error"}
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
