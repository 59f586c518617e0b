"""BrainAtlas2D: labelled 2-D brain patches from Colin27 and MNI152, split by volume.

* ``train`` and ``db``: Colin27 patches drawn from two independent random streams; each patch is
  cut from the head image (``colin27``) or the brain-extracted one (``colin27_bet``) at random, so
  the network sees skull and no skull (the MNI152 template is brain-extracted).
* ``val``: MNI152 patches centred in the left hemisphere (x < 0 mm); ``query``: MNI152 patches
  centred in the right hemisphere (x > 0 mm). Model selection uses val only.

Classes are balanced per split as far as the ``min_fraction`` rule allows. The same seed gives a
byte-identical manifest and PNGs (no dates or absolute paths are written).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from models.data.aal_classes import CLASS_NAMES
from models.data.manifest import SPLITS, ManifestRow, write_manifest
from models.data.patches import PaddedVolume, PatchSite, sample_sites
from models.data.volumes import MNI_VOLUME, AtlasVolumes, class_candidates, load_atlas_volumes

log = logging.getLogger(__name__)

DEFAULT_COUNTS: dict[str, int] = {"train": 6000, "db": 2000, "val": 400, "query": 600}
DATASET_FILE = "dataset.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class _SplitPlan:
    split: str
    subject: str  # "colin27" or "mni152"
    hemisphere: str | None


_PLANS = {
    "train": _SplitPlan("train", "colin27", None),
    "db": _SplitPlan("db", "colin27", None),
    "val": _SplitPlan("val", "mni152", "left"),
    "query": _SplitPlan("query", "mni152", "right"),
}


@dataclass(frozen=True)
class _Patch:
    site: PatchSite
    volume: str


def per_class_counts(total: int, num_classes: int) -> list[int]:
    """``total`` spread evenly over classes; the remainder goes to the first classes."""
    base, extra = divmod(total, num_classes)
    return [base + (1 if c < extra else 0) for c in range(num_classes)]


def _split_patches(
    atlas: AtlasVolumes,
    plan: _SplitPlan,
    total: int,
    rng: np.random.Generator,
    patch_size: int,
    min_fraction: float,
) -> list[_Patch]:
    classes = atlas.colin_classes if plan.subject == "colin27" else atlas.mni_classes
    candidates = class_candidates(classes, len(CLASS_NAMES), atlas.affine, plan.hemisphere)
    wanted = per_class_counts(total, len(CLASS_NAMES))
    sites = sample_sites(PaddedVolume(classes, patch_size), candidates, wanted, rng, min_fraction)
    if plan.subject == "colin27":
        flavours = sorted(name for name in atlas.intensities if name != MNI_VOLUME)
        picks = rng.integers(len(flavours), size=len(sites))
        patches = [_Patch(s, flavours[int(p)]) for s, p in zip(sites, picks, strict=True)]
    else:
        patches = [_Patch(s, MNI_VOLUME) for s in sites]
    order = rng.permutation(len(patches))  # no class blocks: index tie-breaks stay unbiased
    return [patches[int(i)] for i in order]


def _row(split: str, index: int, patch: _Patch, affine: np.ndarray) -> ManifestRow:
    patch_id = f"{split}-{index:05d}"
    world = affine @ np.array([*patch.site.centre, 1.0])
    cx, cy, cz = (round(float(v)) for v in world[:3])
    return ManifestRow(
        id=patch_id,
        path=f"images/{split}/{patch_id}.png",
        label=patch.site.label,
        label_name=CLASS_NAMES[patch.site.label],
        volume=patch.volume,
        plane=patch.site.plane,
        split=split,
        cx=cx,
        cy=cy,
        cz=cz,
    )


def _write_images(
    out_dir: Path,
    planned: dict[str, list[_Patch]],
    atlas: AtlasVolumes,
    patch_size: int,
    progress: bool,
) -> list[ManifestRow]:
    padded = {name: PaddedVolume(v, patch_size) for name, v in atlas.intensities.items()}
    rows: list[ManifestRow] = []
    total = sum(len(p) for p in planned.values())
    with tqdm(total=total, desc="BrainAtlas2D", unit="patch", disable=not progress) as bar:
        for split, patches in planned.items():
            (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
            for index, patch in enumerate(patches):
                row = _row(split, index, patch, atlas.affine)
                pixels = padded[patch.volume].patch(patch.site.centre, patch.site.plane)
                Image.fromarray(np.ascontiguousarray(pixels), mode="L").save(
                    out_dir / row.path, format="PNG"
                )
                rows.append(row)
                bar.update()
    return rows


def _describe(
    seed: int,
    patch_size: int,
    min_fraction: float,
    counts: Mapping[str, int],
    rows: list[ManifestRow],
    atlas: AtlasVolumes,
) -> dict[str, object]:
    made = {
        split: [
            sum(1 for r in rows if r.split == split and r.label == c)
            for c in range(len(CLASS_NAMES))
        ]
        for split in counts
    }
    return {
        "name": "BrainAtlas2D",
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "patch_size": patch_size,
        "min_class_fraction": min_fraction,
        "requested_counts": dict(counts),
        "counts_per_class": made,
        "classes": list(CLASS_NAMES),
        "volumes": sorted(atlas.intensities),
        "sources": atlas.sources,
        "split_rule": "train/db: Colin27; val: MNI152 centre x<0 mm; query: MNI152 centre x>0 mm",
    }


def build_brain_atlas(
    out_dir: Path,
    seed: int = 0,
    patch_size: int = 64,
    counts: Mapping[str, int] | None = None,
    progress: bool = True,
    *,
    min_fraction: float = 0.15,
    templates_dir: Path | None = None,
    nilearn_data_dir: Path | None = None,
    colin_flavours: tuple[str, ...] = ("ch2", "ch2bet"),
) -> Path:
    """Build BrainAtlas2D under ``out_dir``; returns the path of ``manifest.csv``.

    ``counts`` maps split name → number of patches (default :data:`DEFAULT_COUNTS`); missing
    splits are skipped. Raises :class:`DataSourceMissing` when a source volume is not installed.
    """
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    unknown = set(counts) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; expected some of {SPLITS}")
    atlas = load_atlas_volumes(templates_dir, nilearn_data_dir, colin_flavours)
    planned = {}
    for stream, split in enumerate(SPLITS, start=1):
        if counts.get(split, 0) > 0:
            rng = np.random.default_rng([seed, stream])  # one independent stream per split
            planned[split] = _split_patches(
                atlas, _PLANS[split], counts[split], rng, patch_size, min_fraction
            )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / "images", ignore_errors=True)  # no stale patches from older builds
    rows = _write_images(out_dir, planned, atlas, patch_size, progress)
    info = _describe(seed, patch_size, min_fraction, counts, rows, atlas)
    (out_dir / DATASET_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    log.info("BrainAtlas2D: %d patches written to %s", len(rows), out_dir)
    return write_manifest(out_dir, rows, CLASS_NAMES)
