"""BrainAtlas2D: a tiny build checked for determinism, the split-by-volume rule and coverage."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from models.data import (
    DataSourceMissing,
    PatchDataset,
    build_brain_atlas,
    load_manifest,
    load_split,
)
from models.data.aal_classes import CLASS_NAMES, class_of_region
from models.data.sources import MRICRON_TEMPLATES, mni152_file, read_aal_names
from models.preprocess import PreprocessSpec

torch.set_num_threads(1)

COUNTS = {"train": 30, "db": 20, "val": 20, "query": 20}
needs_sources = pytest.mark.skipif(
    not (MRICRON_TEMPLATES / "aal.nii.gz").is_file(), reason="mricron-data not installed"
)


@pytest.fixture(scope="module")
def atlas_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (MRICRON_TEMPLATES / "aal.nii.gz").is_file():
        pytest.skip("mricron-data not installed")
    out = tmp_path_factory.mktemp("atlas")
    build_brain_atlas(out, seed=3, patch_size=32, counts=COUNTS, progress=False)
    return out


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_every_aal_region_has_a_class() -> None:
    if not (MRICRON_TEMPLATES / "aal.nii.txt").is_file():
        pytest.skip("mricron-data not installed")
    names = read_aal_names(MRICRON_TEMPLATES / "aal.nii.txt")
    assert len(names) == 116
    assert {class_of_region(n) for n in names.values()} == set(CLASS_NAMES)
    assert class_of_region("Hippocampus_L") == "mesial_temporal"
    assert class_of_region("Vermis_4_5") == "vermis"
    assert class_of_region("Cerebelum_Crus1_R") == "cerebellum"


@needs_sources
def test_same_seed_same_bytes_other_seed_differs(atlas_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_brain_atlas(again, seed=3, patch_size=32, counts=COUNTS, progress=False)
    assert _tree_bytes(again) == _tree_bytes(atlas_dir)
    other = tmp_path / "other"
    build_brain_atlas(other, seed=4, patch_size=32, counts=COUNTS, progress=False)
    assert (other / "manifest.csv").read_bytes() != (atlas_dir / "manifest.csv").read_bytes()


@needs_sources
def test_split_by_volume_and_hemisphere(atlas_dir: Path) -> None:
    manifest = load_manifest(atlas_dir)
    for row in manifest.rows:
        if row.split in ("train", "db"):
            assert row.volume.startswith("colin27")
        else:
            assert row.volume == "mni152"
        if row.split == "val":
            assert row.cx < 0
        if row.split == "query":
            assert row.cx > 0
    assert {r.volume for r in manifest.split("train")} == {"colin27", "colin27_bet"}
    train_sites = {(r.cx, r.cy, r.cz, r.plane) for r in manifest.split("train")}
    db_sites = {(r.cx, r.cy, r.cz, r.plane) for r in manifest.split("db")}
    assert len(train_sites & db_sites) < len(db_sites)  # independent random streams


@needs_sources
def test_counts_classes_and_files(atlas_dir: Path) -> None:
    manifest = load_manifest(atlas_dir)
    assert manifest.class_names == list(CLASS_NAMES)
    for split, count in COUNTS.items():
        rows = manifest.split(split)
        assert len(rows) == count
        per_class = np.bincount([r.label for r in rows], minlength=len(CLASS_NAMES))
        assert per_class.min() >= count // len(CLASS_NAMES)  # balanced
        assert all(CLASS_NAMES[r.label] == r.label_name for r in rows)
        assert all((atlas_dir / r.path).is_file() for r in rows)
    assert {r.plane for r in manifest.rows} == {"axial", "coronal", "sagittal"}


@needs_sources
def test_load_split_and_dataset(atlas_dir: Path) -> None:
    train = load_split(atlas_dir, "train")
    assert train.images.shape == (30, 32, 32) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and len(train.ids) == 30
    assert train.images.max() > 100  # real intensities, not blank patches
    resized = load_split(atlas_dir, "query", PreprocessSpec(image_size=16))
    assert resized.images.shape == (20, 16, 16)
    dataset = PatchDataset(train.images, train.labels, PreprocessSpec(24), augment=True, seed=1)
    image, fingerprint, label = dataset[0]
    assert image.shape == (3, 24, 24) and fingerprint.shape == (256,)
    assert int(label) == train.labels[0]
    batch = next(iter(DataLoader(dataset, batch_size=8)))
    assert [t.shape[0] for t in batch] == [8, 8, 8]
    with pytest.raises(ValueError):
        load_split(atlas_dir, "nonexistent")


def test_missing_sources_name_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(
        DataSourceMissing, match=r"apt-get update && apt-get install -y mricron-data"
    ):
        build_brain_atlas(tmp_path / "out", counts=COUNTS, progress=False, templates_dir=tmp_path)
    with pytest.raises(DataSourceMissing, match=r"pip install nilearn"):
        mni152_file(tmp_path)
