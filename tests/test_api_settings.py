"""Settings parsing (the only reader of ACIR_* variables) and the CORS policy."""

from __future__ import annotations

import pytest

from app.settings import Settings, parse_api_keys


def test_api_keys_accept_pairs_json_and_mappings():
    assert parse_api_keys("a:one, b:two") == {"a": "one", "b": "two"}
    assert parse_api_keys('{"a": "one"}') == {"a": "one"}
    assert parse_api_keys({"a": 1}) == {"a": "1"}
    assert parse_api_keys("") == {}
    with pytest.raises(ValueError, match="id:secret"):
        parse_api_keys("no-separator")


def test_settings_read_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ACIR_ADMIN_API_KEYS", "ops:s3cret")
    monkeypatch.setenv("ACIR_SEARCH_REQUIRES_KEY", "true")
    monkeypatch.setenv("ACIR_CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("ACIR_INDEX_DIR", str(tmp_path))
    monkeypatch.setenv("ACIR_MAX_K", "7")
    settings = Settings()
    assert settings.admin_api_keys == {"ops": "s3cret"} and settings.search_requires_key
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.index_dir == tmp_path and settings.max_k == 7
    assert settings.database_url == "sqlite:///./var/acir.db"


def test_invalid_setting_is_refused(monkeypatch):
    monkeypatch.setenv("ACIR_MAX_K", "0")
    with pytest.raises(ValueError):
        Settings()


@pytest.mark.usefixtures("migrated_url")
def test_cors_allows_only_configured_origins(make_client):
    client = make_client(cors_origins=["https://viewer.example"])
    preflight = {"Access-Control-Request-Method": "POST"}
    ok = client.options("/search", headers={"Origin": "https://viewer.example", **preflight})
    assert ok.headers.get("access-control-allow-origin") == "https://viewer.example"
    bad = client.options("/search", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in bad.headers
