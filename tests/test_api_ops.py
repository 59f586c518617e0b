"""OpenAPI schema, health, readiness, stats and Prometheus metrics."""

from __future__ import annotations

import pytest
from conftest import admin_headers, files_payload

pytestmark = pytest.mark.usefixtures("migrated_url")


def test_openapi_documents_every_route(make_client):
    schema = make_client().app.openapi()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    expected = {"/search", "/index", "/index/{image_id}", "/images/{image_id}", "/stats",
                "/healthz", "/readyz", "/metrics"}  # fmt: skip
    assert expected <= set(paths)
    for path, methods in paths.items():
        for method, op in methods.items():
            assert op["responses"]["200"]["content"], (method, path)
    errors = paths["/search"]["post"]["responses"]
    assert {"400", "413", "415", "422"} <= set(errors)
    ref = errors["415"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ErrorBody")
    assert "OODRejection" in schema["components"]["schemas"]
    assert set(paths["/index/{image_id}"]["delete"]["responses"]) >= {"401", "403", "404"}


def test_health_ready_and_stats(make_client, pngs):
    client = make_client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "checks": {"model": True, "index": True, "database": True},
    }
    client.post("/index", files=files_payload(pngs[:2]), headers=admin_headers())
    stats = client.get("/stats").json()
    assert stats["count"] == stats["database_count"] == 2
    assert stats["bits"] == 64 and len(stats["checkpoint_sha256"]) == 64
    assert stats["index_type"] == "IndexBinaryIDMap2(IndexBinaryFlat)"
    assert stats["ood_detector"] and stats["ood_threshold"] is not None


def test_metrics_count_requests_stages_and_rejections(make_client, pngs, photo_png):
    client = make_client()
    client.post("/index", files=files_payload(pngs[:2]), headers=admin_headers())
    client.post("/search", files={"file": ("q", pngs[0])})
    client.post("/search", files={"file": ("q", photo_png)})
    client.post("/search", files={"file": ("q", b"not an image")})
    text = client.get("/metrics").text
    assert 'acir_search_stage_seconds_count{stage="encode"} 1.0' in text
    assert 'acir_search_stage_seconds_count{stage="rerank"} 1.0' in text
    assert 'acir_rejections_total{reason="out_of_distribution",route="/search"} 1.0' in text
    assert 'acir_rejections_total{reason="unsupported_media_type",route="/search"} 1.0' in text
    assert 'acir_requests_total{method="POST",route="/search",status="422"} 1.0' in text
    assert "acir_indexed_images 2.0" in text


def test_unknown_route_and_method_are_json(make_client):
    client = make_client()
    assert client.get("/nope").json()["error"] == "not_found"
    response = client.get("/search")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
