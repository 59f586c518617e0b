"""Service settings: the only module that reads the environment (prefix ``ACIR_``)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ApiKeys = Annotated[dict[str, str], NoDecode]
Origins = Annotated[list[str], NoDecode]


def parse_api_keys(value: Any) -> dict[str, str]:
    """Accept a mapping, a JSON object, or ``"id:secret,id2:secret2"`` (commas or whitespace)."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str) and value.strip().startswith("{"):
        return parse_api_keys(json.loads(value))
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    keys: dict[str, str] = {}
    for item in items:
        key_id, sep, secret = str(item).partition(":")
        if not sep or not key_id or not secret:
            raise ValueError("API keys must be given as 'id:secret' pairs")
        keys[key_id] = secret
    return keys


class Settings(BaseSettings):
    """Everything the service can be configured with; see each field's description."""

    model_config = SettingsConfigDict(env_prefix="ACIR_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./var/acir.db", description="SQLAlchemy database URL"
    )
    checkpoint: Path = Field(
        default=Path("checkpoints/acir-compact-64.pt"), description="model file"
    )
    index_dir: Path = Field(
        default=Path("var/index"), description="where the FAISS index is persisted"
    )
    admin_api_keys: ApiKeys = Field(default_factory=dict, description="key id -> secret")
    search_api_keys: ApiKeys = Field(default_factory=dict, description="key id -> secret")
    search_requires_key: bool = Field(default=False, description="whether read routes need a key")
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, gt=0, description="request body limit")
    max_image_pixels: int = Field(default=40_000_000, gt=0, description="width x height limit")
    max_files_per_request: int = Field(default=256, gt=0)
    max_k: int = Field(default=100, gt=0)
    candidate_multiplier: int = Field(default=10, ge=1, description="FAISS candidates = k x this")
    hamming_weight: float = Field(
        default=0.0,
        ge=0.0,
        description="Hamming term in the re-rank score (similarity - weight x hamming / bits); "
        "0 ranks by content alone, above the code length content only breaks Hamming ties",
    )
    ingest_batch_size: int = Field(default=32, gt=0, description="images per encoder forward pass")
    audit_searches: bool = Field(default=True, description="write an audit row for every search")
    cors_origins: Origins = Field(default_factory=list)
    torch_threads: int | None = Field(
        default=1,
        gt=0,
        description="torch threads per encode; 1 suits small CPUs, where concurrency comes from "
        "serving several requests at once (None = torch's default)",
    )
    faiss_threads: int = Field(
        default=1, gt=0, description="OpenMP threads per FAISS search (one query, one core)"
    )

    @field_validator("admin_api_keys", "search_api_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> dict[str, str]:
        return parse_api_keys(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> list[str]:
        if isinstance(value, str):
            text = value.strip()
            return (
                list(json.loads(text)) if text.startswith("[") else text.replace(",", " ").split()
            )
        return list(value or [])


@lru_cache
def get_settings() -> Settings:
    """Settings read once from the environment (tests build `Settings(...)` directly instead)."""
    return Settings()
