"""HTTP API: search, ingestion, deletion, filters and the shape of every response."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from conftest import admin_headers, blob_image, dicom_bytes, encode_as, files_payload

pytestmark = pytest.mark.usefixtures("migrated_url")


def ingest(client: Any, blobs: list[bytes], metadata: list[dict[str, Any]] | None = None) -> Any:
    data = {"metadata": json.dumps(metadata)} if metadata is not None else None
    return client.post("/index", files=files_payload(blobs), data=data, headers=admin_headers())


def search(client: Any, blob: bytes, **form: Any) -> Any:
    return client.post("/search", files={"file": ("q.png", blob, "image/png")}, data=form)


def test_ingest_then_search_returns_ranked_results(make_client, pngs):
    client = make_client()
    meta = [{"external_id": f"ext-{i}", "label": "ab"[i % 2], "collection": "c1"} for i in range(4)]
    body = ingest(client, pngs[:4], meta).json()
    assert body["indexed"] == 4 and len(set(body["ids"])) == 4
    response = search(client, pngs[2], k=3)
    assert response.status_code == 200
    out = response.json()
    assert [r["rank"] for r in out["results"]] == [1, 2, 3]
    top = out["results"][0]
    assert top["id"] == body["ids"][2] and top["hamming"] == 0
    assert top["external_id"] == "ext-2" and top["metadata"]["collection"] == "c1"
    sims = [r["similarity"] for r in out["results"]]
    assert sims == sorted(sims, reverse=True) and all(0.0 <= s <= 1.0 for s in sims)
    assert set(out["timings_ms"]) >= {"decode", "encode", "ood", "search", "rerank", "total"}
    assert out["ood"]["threshold"] > out["ood"]["score"]


def test_search_on_empty_index_returns_no_results(make_client, pngs):
    out = search(make_client(), pngs[0]).json()
    assert out["results"] == []


def test_reingest_same_bytes_is_idempotent(make_client, pngs):
    client = make_client()
    first = ingest(client, pngs[:2]).json()
    again = ingest(client, [pngs[1], pngs[0], pngs[1]]).json()
    assert again["indexed"] == 0 and again["duplicates"] == 3
    assert again["ids"] == [first["ids"][1], first["ids"][0], first["ids"][1]]
    assert all(r["duplicate"] for r in again["results"])
    assert client.get("/stats").json()["count"] == 2


def test_repeated_file_within_one_request(make_client, pngs):
    body = ingest(make_client(), [pngs[0], pngs[0]]).json()
    assert [r["status"] for r in body["results"]] == ["indexed", "duplicate"]
    assert body["ids"][0] == body["ids"][1]


def test_ingest_refuses_bad_files_per_file(make_client, pngs, photo_png):
    client = make_client()
    blobs = [pngs[0], photo_png, b"plain text, not an image", pngs[1][:40], pngs[1]]
    body = ingest(client, blobs).json()
    statuses = [(r["status"], r["error"], r["http_status"]) for r in body["results"]]
    assert statuses == [
        ("indexed", None, None),
        ("rejected", "out_of_distribution", 422),
        ("rejected", "unsupported_media_type", 415),
        ("rejected", "unreadable_image", 400),
        ("indexed", None, None),
    ]
    assert body["results"][1]["ood_score"] is not None
    assert client.get("/stats").json()["count"] == 2


def test_search_of_photo_is_refused_as_out_of_distribution(make_client, pngs, photo_png):
    client = make_client()
    ingest(client, pngs[:3])
    response = search(client, photo_png)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "out_of_distribution" and "results" not in body
    assert body["score"] > body["threshold"] and body["detector"]


def test_closed_gate_refuses_everything(make_client, pngs):
    response = search(make_client("closed"), pngs[0])
    assert response.status_code == 422
    assert response.json()["threshold"] is None  # -inf is not JSON: reported as null


@pytest.mark.parametrize(
    ("blob", "status", "error"),
    [
        (b"", 400, "empty_file"),
        (b"GIF89a" + b"\0" * 64, 415, "unsupported_media_type"),
        (b"%PDF-1.4 not an image", 415, "unsupported_media_type"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, 400, "unreadable_image"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 30, 400, "unreadable_image"),
        (b"II*\x00" + b"\xff" * 40, 400, "unreadable_image"),
        (b"\0" * 128 + b"DICM" + b"\x02\x00" * 40, 400, "unreadable_image"),
    ],
)
def test_bad_uploads_get_clear_errors(make_client, blob, status, error):
    response = search(make_client(), blob)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["detail"]


def test_truncated_png_is_400(make_client, pngs):
    response = search(make_client(), pngs[0][: len(pngs[0]) // 2])
    assert response.status_code == 400
    assert response.json()["error"] == "unreadable_image"


def test_huge_dimension_image_is_413(make_client):
    big = encode_as(blob_image(0, size=1100), "PNG")  # 1.21 M pixels > the 1 M limit
    response = search(make_client(), big)
    assert response.status_code == 413
    assert response.json()["error"] == "image_too_large"


def test_body_over_limit_is_413_from_content_length(make_client, pngs):
    response = search(make_client(max_upload_bytes=1000), pngs[0] + b"\0" * 2000)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_streamed_body_over_limit_is_413(make_client):
    client = make_client(max_upload_bytes=4096)

    def chunks():
        for _ in range(16):
            yield b"x" * 1024

    headers = {"Content-Type": "multipart/form-data; boundary=zzz"}
    response = client.post("/search", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


@pytest.mark.parametrize("k", [0, -1, 101, "ten"])
def test_bad_k_is_422(make_client, pngs, k):
    response = search(make_client(), pngs[0], k=k)
    assert response.status_code == 422
    assert response.json()["error"] in {"validation_error", "invalid_parameter"}


def test_missing_file_is_422(make_client):
    response = make_client().post("/search", data={"k": 3})
    assert response.status_code == 422 and response.json()["error"] == "validation_error"


@pytest.mark.parametrize(
    "metadata",
    ['{"external_id": 5', "[]", '[{"label": "x", "unknown": 1}]', '[{"external_id": "x"}, {}]'],
)
def test_bad_metadata_is_422_and_stores_nothing(make_client, pngs, metadata):
    client = make_client()
    response = client.post(
        "/index",
        files=files_payload(pngs[:1]),
        data={"metadata": metadata},
        headers=admin_headers(),
    )
    assert response.status_code == 422 and response.json()["error"] == "invalid_parameter"
    assert client.get("/stats").json()["database_count"] == 0


def test_filters_restrict_results(make_client, pngs):
    client = make_client()
    meta = [{"label": "ab"[i % 2], "collection": f"c{i // 3}"} for i in range(6)]
    ids = ingest(client, pngs, meta).json()["ids"]
    by_label = search(client, pngs[0], k=10, label="b").json()["results"]
    assert {r["id"] for r in by_label} == {ids[1], ids[3], ids[5]}
    both = search(client, pngs[0], k=10, label="a", collection="c1").json()["results"]
    assert [r["id"] for r in both] == [ids[4]]
    assert search(client, pngs[0], label="nope").json()["results"] == []


def test_filtered_search_sees_later_ingestion_and_deletion(make_client, pngs):
    client = make_client()
    first = ingest(client, pngs[:2], [{"label": "x"}, {"label": "y"}]).json()["ids"]
    assert [r["id"] for r in search(client, pngs[0], k=10, label="x").json()["results"]] == [
        first[0]
    ]
    later = ingest(client, pngs[2:3], [{"label": "x"}]).json()["ids"]
    hits = {r["id"] for r in search(client, pngs[0], k=10, label="x").json()["results"]}
    assert hits == {first[0], later[0]}
    assert client.delete(f"/index/{first[0]}", headers=admin_headers()).status_code == 200
    hits = {r["id"] for r in search(client, pngs[0], k=10, label="x").json()["results"]}
    assert hits == {later[0]}


def test_delete_removes_from_search_and_lookup(make_client, pngs):
    client = make_client()
    ids = ingest(client, pngs[:3]).json()["ids"]
    response = client.delete(f"/index/{ids[0]}", headers=admin_headers())
    assert response.status_code == 200 and response.json() == {"id": ids[0], "deleted": True}
    assert client.get(f"/images/{ids[0]}").status_code == 404
    hits = search(client, pngs[0], k=10).json()["results"]
    assert ids[0] not in {h["id"] for h in hits} and len(hits) == 2
    assert client.delete(f"/index/{ids[0]}", headers=admin_headers()).status_code == 404
    # the same bytes can be indexed again afterwards, under a new id
    again = ingest(client, pngs[:1]).json()
    assert again["indexed"] == 1 and again["ids"][0] not in ids


def test_get_image_and_unknown_ids(make_client, pngs):
    client = make_client()
    meta = [{"external_id": "e1", "label": "a", "collection": "c", "tags": {"k": [1, 2]}}]
    image_id = ingest(client, pngs[:1], meta).json()["ids"][0]
    body = client.get(f"/images/{image_id}").json()
    assert body["tags"] == {"k": [1, 2]} and body["width"] == 32 and len(body["sha256"]) == 64
    assert client.get("/images/999999").status_code == 404
    assert client.get("/images/999999").json()["error"] == "not_found"
    assert client.get("/images/abc").status_code == 422
    assert client.delete("/index/999999", headers=admin_headers()).status_code == 404


def test_dicom_upload_is_searchable_and_drops_identity(make_client):
    pytest.importorskip("models.data.dicom")
    client = make_client("open")
    blob = dicom_bytes(blob_image(1).astype("u2") * 16)
    body = ingest(client, [blob], [{"external_id": "dcm-1"}]).json()
    assert body["indexed"] == 1, body
    image = client.get(f"/images/{body['ids'][0]}").json()
    assert image["modality"] == "MR"
    assert "Doe" not in json.dumps(image) and "PID-123" not in json.dumps(image)
    response = client.post("/search", files={"file": ("q.dcm", blob, "application/dicom")})
    assert response.status_code == 200 and response.json()["results"][0]["hamming"] == 0


def test_jpeg_and_tiff_are_accepted(make_client):
    client = make_client("open")
    for fmt in ("JPEG", "TIFF"):
        response = search(client, encode_as(blob_image(2), fmt))
        assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    "magic", [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"\0" * 128 + b"DICM"]
)
def test_random_bytes_behind_magic_never_500(make_client, magic):
    client = make_client()
    rng = np.random.default_rng(len(magic))
    for size in (1, 16, 300):
        blob = magic + rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert search(client, blob).status_code in {400, 413, 415}
        assert ingest(client, [blob]).json()["results"][0]["http_status"] in {400, 413, 415}
    assert client.get("/stats").json()["database_count"] == 0
