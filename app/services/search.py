"""Query by image: decode -> encode -> OOD gate -> Hamming candidates -> re-rank -> metadata."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from app.db.models import ImageRecord
from app.decode import decode_image
from app.errors import InvalidParameterError, OutOfDistributionError
from app.services.audit import write_event
from app.services.features import FeatureStore
from app.services.gate import accepts
from app.services.runtime import Runtime
from index import pack_bits
from index.rerank import rerank_prepared

_META_COLUMNS = (
    ImageRecord.id, ImageRecord.external_id, ImageRecord.label, ImageRecord.collection,
    ImageRecord.modality, ImageRecord.tags, ImageRecord.width, ImageRecord.height,
)  # fmt: skip


@dataclass(frozen=True)
class SearchHit:
    id: int
    external_id: str | None
    label: str | None
    metadata: dict[str, Any]
    hamming: int
    similarity: float
    rank: int


@dataclass(frozen=True)
class Filters:
    label: str | None = None
    collection: str | None = None

    @property
    def active(self) -> bool:
        return self.label is not None or self.collection is not None


@dataclass
class SearchOutcome:
    hits: list[SearchHit]
    ood_score: float
    threshold: float
    detector: str
    timings_ms: dict[str, float] = field(default_factory=dict)


class _Clock:
    """Collects per-stage wall times in milliseconds."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = (time.perf_counter() - began) * 1000.0

    def total(self) -> dict[str, float]:
        return {**self.ms, "total": (time.perf_counter() - self.start) * 1000.0}


def search_image(
    rt: Runtime, data: bytes, k: int, filters: Filters | None = None, key_id: str | None = None
) -> SearchOutcome:
    """Ranked neighbours of an uploaded image; `OutOfDistributionError` (422) for OOD queries."""
    if not 1 <= k <= rt.settings.max_k:
        raise InvalidParameterError(f"k must be between 1 and {rt.settings.max_k}", k=k)
    filters = filters or Filters()
    clock = _Clock()
    with clock.stage("decode"):
        image = decode_image(data, rt.settings.max_image_pixels)
    batch = rt.encoder.encode([image.pixels])
    # The encoder scores OOD in the same forward pass; report its own split of the time.
    clock.ms["encode"] = batch.timings_ms["preprocess"] + batch.timings_ms["network"]
    clock.ms["ood"] = batch.timings_ms["ood"]
    score, threshold = float(batch.ood_scores[0]), rt.encoder.ood_threshold
    if not accepts(score, threshold):
        _audit(rt, "ood_reject", key_id, [], score, k, filters)
        raise OutOfDistributionError(
            "the image does not look like the images this model was trained on",
            score=score, threshold=threshold, detector=rt.encoder.ood_detector,
        )  # fmt: skip
    hits = _neighbours(rt, pack_bits(batch.bits)[0], batch.features[0], k, filters, clock)
    _audit(rt, "search", key_id, [h.id for h in hits], score, k, filters)
    return SearchOutcome(hits, score, threshold, rt.encoder.ood_detector, clock.total())


def _neighbours(
    rt: Runtime, code: np.ndarray, feature: np.ndarray, k: int, filters: Filters, clock: _Clock
) -> list[SearchHit]:
    with clock.stage("search"):
        allowed = _allowed_ids(rt, filters) if filters.active else None
        n_candidates = k * rt.settings.candidate_multiplier
        hamming, ids = rt.index.search_candidates(code, n_candidates, allowed)
    with clock.stage("rerank"):
        ranked = _rerank(rt, feature, ids, hamming, k)
    with clock.stage("metadata"):
        return _with_metadata(rt, ranked)


def _allowed_ids(rt: Runtime, filters: Filters) -> np.ndarray:
    def load() -> np.ndarray:
        query = select(ImageRecord.id)
        if filters.label is not None:
            query = query.where(ImageRecord.label == filters.label)
        if filters.collection is not None:
            query = query.where(ImageRecord.collection == filters.collection)
        with rt.sessions() as session:
            return np.array(session.scalars(query).all(), dtype=np.int64)

    return rt.filters.allowed_ids((filters.label, filters.collection), load)


def _rerank(
    rt: Runtime, feature: np.ndarray, ids: np.ndarray, hamming: np.ndarray, k: int
) -> list[tuple[int, int, float]]:
    weight = rt.settings.hamming_weight
    return rerank_candidates(rt.features, feature, ids, hamming, k, weight, rt.index.bits)


def rerank_candidates(
    store: FeatureStore,
    feature: np.ndarray,
    ids: np.ndarray,
    hamming: np.ndarray,
    k: int,
    hamming_weight: float,
    bits: int,
) -> list[tuple[int, int, float]]:
    """(id, hamming, similarity) best first, ties broken by id (see index.rerank).

    Candidates whose features are gone (deleted since the index read) are dropped. Without a
    Hamming term this is one compiled pass (`FeatureStore.rank`; similarities equal numpy's to
    float32 rounding); with one, or for ids past the kernel's limit, the numpy `rerank_prepared`
    path (same ranking rule and similarities as `index.rerank`).
    """
    if ids.shape[0] == 0:
        return []
    query = np.asarray(feature, np.float32)
    if not hamming_weight:  # the usual case: one compiled pass (index.rerank_kernel)
        ranked = store.rank(ids, query, k)
        if ranked is not None:
            positions, similarity = ranked
            columns = (ids[positions].tolist(), hamming[positions].tolist(), similarity.tolist())
            return list(zip(*columns, strict=True))
    present, feats, divisors, id_limit = store.take_prepared(ids)
    if present is not None:
        ids, hamming = ids[present], hamming[present]
        if ids.shape[0] == 0:
            return []
    top = rerank_prepared(
        query, ids, feats, divisors, hamming, k, hamming_weight, bits, id_limit=id_limit
    )
    return list(zip(top[0].tolist(), top[1].tolist(), top[2].tolist(), strict=True))


def _with_metadata(rt: Runtime, ranked: list[tuple[int, int, float]]) -> list[SearchHit]:
    if not ranked:
        return []
    with rt.sessions() as session:
        query = select(*_META_COLUMNS).where(ImageRecord.id.in_([r[0] for r in ranked]))
        rows = {row.id: row for row in session.execute(query).all()}
    hits: list[SearchHit] = []
    for image_id, hamming, similarity in ranked:
        row = rows.get(image_id)
        if row is None:  # deleted between the index read and now
            continue
        meta = {"collection": row.collection, "modality": row.modality, "tags": row.tags or {},
                "width": row.width, "height": row.height}  # fmt: skip
        hits.append(SearchHit(image_id, row.external_id, row.label, meta, hamming,
                              similarity, len(hits) + 1))  # fmt: skip
    return hits


def _audit(
    rt: Runtime, action: str, key_id: str | None, result_ids: list[int], score: float, k: int,
    filters: Filters,
) -> None:  # fmt: skip
    if not rt.settings.audit_searches and action == "search":
        return
    info = {"k": k, "label": filters.label, "collection": filters.collection}
    write_event(rt.sessions, action, key_id, result_ids=result_ids, ood_score=score, info=info)
