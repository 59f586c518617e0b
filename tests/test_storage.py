"""Storage layer: migrations, schema, ingestion protocol and start-up reconciliation."""

from __future__ import annotations

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select

from app.db.migrate import downgrade, upgrade
from app.db.models import Base, ImageRecord
from app.errors import IndexWriteFailedError
from app.services.features import FeatureStore, features_from_bytes, features_to_bytes
from app.services.ingestion import ImageMeta, UploadItem, ingest_images
from app.services.reconcile import StartupError
from app.services.runtime import open_runtime


def _count(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(ImageRecord)).scalar_one()
    engine.dispose()
    return int(n)


def test_migrations_match_the_models_and_downgrade(database_url):
    upgrade(database_url)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        assert {"images", "audit_events"} <= set(inspect(conn).get_table_names())
    downgrade(database_url)
    with engine.connect() as conn:
        assert not {"images", "audit_events"} & set(inspect(conn).get_table_names())
    engine.dispose()


def test_feature_blobs_round_trip():
    feats = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    back = features_from_bytes(features_to_bytes(feats), 8)
    assert back.dtype == np.float16 and np.allclose(back, feats, atol=1e-2)
    with pytest.raises(ValueError):
        features_from_bytes([b"\0" * 6], 8)


def test_feature_store_get_skips_unknown_ids():
    store = FeatureStore(2, capacity=1)
    store.add(np.array([5, 9]), np.array([[1, 0], [0, 1]], np.float32))
    store.add(np.array([11]), np.array([[1, 1]], np.float32))
    store.remove(np.array([9]))
    ids, feats = store.get(np.array([11, 9, 5]))
    assert ids.tolist() == [11, 5] and feats.tolist() == [[1, 1], [1, 0]]


def test_ingest_from_code_with_progress(settings_factory, pngs):
    rt = open_runtime(settings_factory())
    seen: list[int] = []
    items = [UploadItem(b, f"{i}.png", ImageMeta(label="x")) for i, b in enumerate(pngs)]
    try:
        outcomes = ingest_images(rt, items, key_id="cli", progress=seen.append)
    finally:
        rt.close()
    assert seen == [4, 2]  # ingest_batch_size is 4 in the test settings
    assert [o.status for o in outcomes] == ["indexed"] * len(pngs)
    assert sorted(o.id or -1 for o in outcomes) == rt.index.ids().tolist()


def test_failed_index_add_leaves_no_row(settings_factory, pngs, monkeypatch):
    settings = settings_factory()
    rt = open_runtime(settings)

    def broken_add(ids: np.ndarray, codes: np.ndarray) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(rt.index, "add", broken_add)
    try:
        with pytest.raises(IndexWriteFailedError):
            ingest_images(rt, [UploadItem(pngs[0])])
    finally:
        rt.close()
    assert _count(settings.database_url) == 0 and len(rt.features) == 0


def test_rows_missing_from_the_index_are_added_at_start_up(settings_factory, pngs):
    settings = settings_factory()
    rt = open_runtime(settings)
    ingest_images(rt, [UploadItem(b) for b in pngs[:2]])
    saved = (
        (settings.index_dir / "index.faiss").read_bytes(),
        (settings.index_dir / "manifest.json").read_bytes(),
    )
    ingest_images(rt, [UploadItem(pngs[2])])
    rt.close()
    # Simulate a crash after the DB commit but before the index was saved.
    (settings.index_dir / "index.faiss").write_bytes(saved[0])
    (settings.index_dir / "manifest.json").write_bytes(saved[1])
    rt = open_runtime(settings)
    rt.close()
    assert rt.index_source == "rebuilt" and rt.index.count == 3 and len(rt.features) == 3


def test_start_up_refuses_rows_from_another_checkpoint(settings_factory, pngs):
    rt = open_runtime(settings_factory())
    ingest_images(rt, [UploadItem(pngs[0])])
    rt.close()
    with pytest.raises(StartupError, match="another checkpoint"):
        open_runtime(settings_factory("open"))
