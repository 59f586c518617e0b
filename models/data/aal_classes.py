"""Grouping of the 116 AAL regions into BrainAtlas2D's 10 anatomical classes.

Regions the brief leaves open are assigned to the lobe holding most of their cortex: rolandic
operculum, olfactory cortex, gyrus rectus and paracentral lobule → frontal; precuneus → parietal;
Heschl's gyrus, temporal poles and fusiform gyrus → temporal. No region is dropped.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "frontal",
    "parietal",
    "temporal",
    "occipital",
    "insula_cingulate",
    "mesial_temporal",
    "basal_ganglia",
    "thalamus",
    "cerebellum",
    "vermis",
)

# Name prefixes (hemisphere suffix stripped) per class; checked in order, first match wins.
_PREFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("vermis", ("Vermis",)),
    ("cerebellum", ("Cerebelum",)),
    ("thalamus", ("Thalamus",)),
    ("basal_ganglia", ("Caudate", "Putamen", "Pallidum")),
    ("mesial_temporal", ("Hippocampus", "ParaHippocampal", "Amygdala")),
    ("insula_cingulate", ("Insula", "Cingulum")),
    ("occipital", ("Calcarine", "Cuneus", "Lingual", "Occipital")),
    ("temporal", ("Temporal", "Heschl", "Fusiform")),
    ("parietal", ("Postcentral", "Parietal", "SupraMarginal", "Angular", "Precuneus")),
    (
        "frontal",
        ("Precentral", "Frontal", "Supp_Motor", "Rolandic", "Olfactory", "Rectus", "Paracentral"),
    ),
)


def class_of_region(name: str) -> str | None:
    """The class name for an AAL region name, or None when no rule matches."""
    for class_name, prefixes in _PREFIXES:
        if name.startswith(prefixes):
            return class_name
    return None


def class_lookup(region_names: dict[int, str]) -> np.ndarray:
    """uint8 table: AAL label value → class index + 1 (0 = background / unassigned)."""
    table = np.zeros(max(region_names, default=0) + 1, dtype=np.uint8)
    for value, name in region_names.items():
        class_name = class_of_region(name)
        if class_name is not None:
            table[value] = CLASS_NAMES.index(class_name) + 1
    return table
