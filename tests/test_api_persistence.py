"""Persistence across app restarts; the index is rebuilt from the database when needed."""

from __future__ import annotations

import shutil

import pytest
from conftest import admin_headers, files_payload

pytestmark = pytest.mark.usefixtures("migrated_url")


def _ranked(client, blob):
    results = client.post("/search", files={"file": ("q", blob)}, data={"k": 5}).json()["results"]
    return [(r["id"], r["hamming"], r["similarity"]) for r in results]


def _restart(make_client, old):
    old.__exit__(None, None, None)
    return make_client()


def test_results_survive_a_restart(make_client, pngs):
    client = make_client()
    client.post("/index", files=files_payload(pngs), headers=admin_headers())
    before = _ranked(client, pngs[3])
    client = _restart(make_client, client)
    assert client.get("/stats").json()["index_source"] == "loaded"
    assert _ranked(client, pngs[3]) == before


def test_missing_index_files_are_rebuilt_from_the_database(make_client, pngs, tmp_path):
    client = make_client()
    client.post("/index", files=files_payload(pngs), headers=admin_headers())
    before = _ranked(client, pngs[1])
    client.__exit__(None, None, None)
    shutil.rmtree(tmp_path / "index")
    client = make_client()
    stats = client.get("/stats").json()
    assert stats["index_source"] == "rebuilt" and stats["count"] == len(pngs)
    assert _ranked(client, pngs[1]) == before
    assert (tmp_path / "index" / "manifest.json").is_file()


def test_stale_index_is_rebuilt(make_client, pngs, tmp_path):
    client = make_client()
    client.post("/index", files=files_payload(pngs[:3]), headers=admin_headers())
    saved = tmp_path / "saved-index"
    shutil.copytree(tmp_path / "index", saved)
    client.post("/index", files=files_payload(pngs[3:]), headers=admin_headers())
    client.__exit__(None, None, None)
    shutil.rmtree(tmp_path / "index")
    shutil.copytree(saved, tmp_path / "index")  # an index saved before the last batch
    client = make_client()
    stats = client.get("/stats").json()
    assert stats["index_source"] == "rebuilt" and stats["count"] == len(pngs)


def test_corrupt_index_file_is_rebuilt(make_client, pngs, tmp_path):
    client = make_client()
    client.post("/index", files=files_payload(pngs[:3]), headers=admin_headers())
    client.__exit__(None, None, None)
    (tmp_path / "index" / "index.faiss").write_bytes(b"\0" * 100)
    client = make_client()
    assert client.get("/stats").json()["index_source"] == "rebuilt"
    assert _ranked(client, pngs[0])[0][1] == 0
