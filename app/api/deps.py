"""Request dependencies: the shared runtime, metrics and API-key authentication."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.errors import ForbiddenError, ServiceUnavailableError, UnauthorizedError
from app.metrics import ServiceMetrics
from app.services.runtime import Runtime
from app.settings import Settings

Role = Literal["admin", "search"]

_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key header")


@dataclass(frozen=True)
class Principal:
    key_id: str | None
    role: Role | None


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_runtime(request: Request) -> Runtime:
    rt: Runtime | None = getattr(request.app.state, "runtime", None)
    if rt is None:
        raise ServiceUnavailableError("the service is starting or failed to start")
    return rt


def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]


def _match(secret: str, keys: dict[str, str]) -> str | None:
    """Key id whose secret equals `secret`; compares against every key in constant time."""
    found = None
    for key_id, expected in keys.items():
        if hmac.compare_digest(secret.encode(), expected.encode()):
            found = key_id
    return found


def identify(settings: Settings, secret: str | None) -> Principal:
    if not secret:
        return Principal(None, None)
    admin = _match(secret, settings.admin_api_keys)
    search = _match(secret, settings.search_api_keys)
    if admin is not None:
        return Principal(admin, "admin")
    if search is not None:
        return Principal(search, "search")
    raise UnauthorizedError("unknown API key")


def get_principal(
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    return identify(settings, bearer.credentials if bearer else api_key)


def require_reader(
    settings: SettingsDep, who: Annotated[Principal, Depends(get_principal)]
) -> Principal:
    if settings.search_requires_key and who.role is None:
        raise UnauthorizedError("an API key is required")
    return who


def require_admin(who: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if who.role is None:
        raise UnauthorizedError("an admin API key is required")
    if who.role != "admin":
        raise ForbiddenError("this API key may not change the index")
    return who


ReaderDep = Annotated[Principal, Depends(require_reader)]
AdminDep = Annotated[Principal, Depends(require_admin)]
