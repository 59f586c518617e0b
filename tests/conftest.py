"""Shared fixtures for the service tests: a tiny checkpoint, generated images, databases, apps.

The database fixture runs every test against SQLite and, when ``ACIR_TEST_POSTGRES_URL`` is set
(e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), against PostgreSQL too, each test in
a fresh schema that is dropped afterwards.
"""

from __future__ import annotations

import io
import math
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

torch.set_num_threads(1)

POSTGRES_ENV = "ACIR_TEST_POSTGRES_URL"
ADMIN = ("admin", "admin-secret-0123")
READER = ("reader", "reader-secret-4567")
IMAGE_SIZE = 32


def blob_image(seed: int, size: int = IMAGE_SIZE) -> np.ndarray:
    """A smooth, scan-like uint8 image: a dark background with a few seeded Gaussian blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.zeros((size, size), np.float32)
    for _ in range(3):
        cy, cx, s = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.2)
        img += rng.uniform(0.4, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return (255 * img / img.max()).astype(np.uint8)


def outlier_photo(size: int = IMAGE_SIZE) -> np.ndarray:
    """A colourful hard-edged checkerboard: the untrained tiny model scores it above any scan."""
    yy, xx = np.mgrid[0:size, 0:size]
    on = ((xx // 4 + yy // 4) % 2).astype(bool)
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[on] = (230, 40, 40)
    rgb[~on] = (20, 200, 60)
    return rgb


def encode_png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def encode_as(pixels: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def dicom_bytes(pixels: np.ndarray, patient_name: str = "Doe^Jane") -> bytes:
    """An uncompressed MR DICOM file carrying an identifying patient name."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "MR", patient_name, "PID-123"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture(scope="session")
def small_atlas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BrainAtlas2D build of 100 patches from the Debian templates (skipped without them)."""
    from models.data.brain_atlas import build_brain_atlas
    from models.data.sources import MRICRON_TEMPLATES

    if not (MRICRON_TEMPLATES / "aal.nii.gz").is_file():
        pytest.skip("mricron-data not installed (make system-packages)")
    out = tmp_path_factory.mktemp("atlas")
    build_brain_atlas(out, counts={"train": 40, "db": 10, "val": 30, "query": 20}, progress=False)
    return out


@pytest.fixture(scope="session")
def pngs() -> list[bytes]:
    """Six distinct in-distribution PNGs."""
    return [encode_png(blob_image(seed)) for seed in range(6)]


@pytest.fixture(scope="session")
def photo_png() -> bytes:
    return encode_png(outlier_photo())


def _threshold_between(ckpt: object, inliers: list[np.ndarray], outlier: np.ndarray) -> float:
    from models.encoder import ImageEncoder

    scores = ImageEncoder(ckpt).encode([*inliers, outlier]).ood_scores  # type: ignore[arg-type]
    low, high = float(scores[:-1].max()), float(scores[-1])
    assert high > low, "fixture photo must score above the fixture scans"
    return (low + high) / 2


@pytest.fixture(scope="session")
def checkpoint_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Writes tiny untrained checkpoints; gate: "calibrated", "open" (+inf) or "closed" (-inf)."""
    from models.checkpoint import new_checkpoint, save_checkpoint
    from models.config import preset

    cache: dict[str, Path] = {}

    def make(gate: str = "calibrated") -> Path:
        if gate not in cache:
            ckpt = new_checkpoint(preset("tiny"), ["a", "b", "c"], seed=0)
            inliers = [blob_image(s) for s in range(12)]
            thresholds = {"open": math.inf, "closed": -math.inf}
            ckpt.ood.threshold = thresholds.get(gate) or _threshold_between(
                ckpt, inliers, outlier_photo()
            )
            path = tmp_path_factory.mktemp("ckpt") / f"tiny-{gate}.pt"
            save_checkpoint(ckpt, path)
            cache[gate] = path
        return cache[gate]

    return make


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, unmigrated database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'acir.db'}"
        return
    base = make_url(os.environ[POSTGRES_ENV])
    schema = f"acir_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def migrated_url(database_url: str) -> str:
    from app.db.migrate import upgrade

    upgrade(database_url)
    return database_url


@pytest.fixture
def settings_factory(
    migrated_url: str, tmp_path: Path, checkpoint_factory: Callable[[str], Path]
) -> Callable[..., object]:
    from app.settings import Settings

    def make(gate: str = "calibrated", **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": migrated_url,
            "checkpoint": checkpoint_factory(gate),
            "index_dir": tmp_path / "index",
            "admin_api_keys": dict([ADMIN]),
            "search_api_keys": dict([READER]),
            "max_upload_bytes": 2_000_000,
            "max_image_pixels": 1_000_000,
            "ingest_batch_size": 4,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN[1]}"}


def files_payload(
    blobs: list[bytes], name: str = "img"
) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (f"{name}{i}.png", b, "image/png")) for i, b in enumerate(blobs)]


@pytest.fixture
def make_client(settings_factory: Callable[..., object]) -> Iterator[Callable[..., object]]:
    """Start an app (lifespan included) for the given settings overrides; closed at teardown."""
    from fastapi.testclient import TestClient

    from app.server import create_app

    clients: list[TestClient] = []

    def make(gate: str = "calibrated", **overrides: object) -> TestClient:
        client = TestClient(create_app(settings_factory(gate, **overrides)))  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)
