"""API keys: 401 without or with an unknown key, 403 for a search key on admin routes."""

from __future__ import annotations

import pytest
from conftest import ADMIN, READER, admin_headers, files_payload

pytestmark = pytest.mark.usefixtures("migrated_url")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-secret"}, 401),
        ({"X-API-Key": "wrong-secret"}, 401),
        ({"Authorization": f"Bearer {READER[1]}"}, 403),
        ({"X-API-Key": READER[1]}, 403),
        ({"X-API-Key": ADMIN[1]}, 200),
        ({"Authorization": f"Bearer {ADMIN[1]}"}, 200),
    ],
)
def test_index_requires_an_admin_key(make_client, pngs, headers, status):
    client = make_client()
    response = client.post("/index", files=files_payload(pngs[:1]), headers=headers)
    assert response.status_code == status
    if status != 200:
        assert response.json()["error"] in {"unauthorized", "forbidden"}
        assert client.get("/stats").json()["database_count"] == 0


def test_delete_requires_an_admin_key(make_client, pngs):
    client = make_client()
    image_id = client.post("/index", files=files_payload(pngs[:1]), headers=admin_headers()).json()[
        "ids"
    ][0]
    assert client.delete(f"/index/{image_id}").status_code == 401
    assert client.delete(f"/index/{image_id}", headers={"X-API-Key": READER[1]}).status_code == 403
    assert client.get(f"/images/{image_id}").status_code == 200


def test_search_key_setting(make_client, pngs):
    client = make_client(search_requires_key=True)
    query = {"file": ("q.png", pngs[0], "image/png")}
    assert client.post("/search", files=query).status_code == 401
    assert client.get("/stats").status_code == 401
    assert client.post("/search", files=query, headers={"X-API-Key": READER[1]}).status_code == 200
    assert client.post("/search", files=query, headers=admin_headers()).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_open_search_still_rejects_unknown_keys(make_client, pngs):
    client = make_client()
    query = {"file": ("q.png", pngs[0], "image/png")}
    assert client.post("/search", files=query).status_code == 200
    assert client.post("/search", files=query, headers={"X-API-Key": "nope"}).status_code == 401


def test_audit_records_who_did_what(make_client, pngs, photo_png, migrated_url):
    from sqlalchemy import create_engine, select

    from app.db.models import AuditEvent

    client = make_client()
    ids = client.post("/index", files=files_payload(pngs[:2]), headers=admin_headers()).json()[
        "ids"
    ]
    client.post("/search", files={"file": ("q", pngs[0])}, headers={"X-API-Key": READER[1]})
    client.post("/search", files={"file": ("q", photo_png)})
    client.delete(f"/index/{ids[1]}", headers=admin_headers())
    engine = create_engine(migrated_url)
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent).order_by(AuditEvent.id)).all()
    engine.dispose()
    assert [(r.action, r.key_id) for r in rows] == [
        ("ingest", "admin"),
        ("search", "reader"),
        ("ood_reject", None),
        ("delete", "admin"),
    ]
    assert sorted(rows[0].image_ids) == sorted(ids) and rows[1].result_ids[0] == ids[0]
    assert rows[2].ood_score is not None and rows[2].result_ids == []
