"""Data: BrainAtlas2D builder and manifest, loaders for user data sets, torch datasets."""

from models.data.brain_atlas import DEFAULT_COUNTS, build_brain_atlas
from models.data.datasets import PatchDataset
from models.data.labelled import LabelledImages
from models.data.manifest import Manifest, ManifestRow, load_manifest, load_split
from models.data.sources import DataSourceMissing

__all__ = [
    "DEFAULT_COUNTS",
    "DataSourceMissing",
    "LabelledImages",
    "Manifest",
    "ManifestRow",
    "PatchDataset",
    "build_brain_atlas",
    "load_manifest",
    "load_split",
]
