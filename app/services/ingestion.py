"""Batched ingestion: decode, de-duplicate by content SHA-256, encode, OOD gate, store, index.

Write protocol (under the runtime's write lock): commit the database rows, then add the codes to
the index; if the index add fails the rows are deleted again. A crash in between leaves rows that
the start-up reconciliation adds to the index, so the database and index always end up equal.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import ImageRecord
from app.decode import DecodedImage, decode_image
from app.errors import (
    BadImageError,
    IndexWriteFailedError,
    OutOfDistributionError,
    ServiceError,
)
from app.services.audit import add_event, write_event
from app.services.gate import accepts
from app.services.runtime import Runtime
from app.services.uploads import ImageMeta, IngestOutcome, IngestStatus, UploadItem
from index import pack_bits

logger = logging.getLogger(__name__)

__all__ = ["ImageMeta", "IngestOutcome", "UploadItem", "ingest_images", "persist_index"]


@dataclass
class _Pending:
    position: int
    item: UploadItem
    sha256: str
    image: DecodedImage
    code: np.ndarray | None = None
    feature: np.ndarray | None = None
    ood_score: float | None = None


def _refusal(
    position: int, item: UploadItem, exc: ServiceError, score: float | None = None
) -> IngestOutcome:
    return IngestOutcome(
        position, item.filename, "rejected", error=exc.error, detail=exc.detail,
        http_status=exc.status_code, ood_score=score,
    )  # fmt: skip


def ingest_images(
    rt: Runtime,
    items: Sequence[UploadItem],
    *,
    key_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[IngestOutcome]:
    """Ingest files in encoder-sized batches; one outcome per input, in input order.

    The index is saved (atomically) once at the end of the call if anything was indexed, not per
    batch: the database is the source of truth, and a crash before the save is repaired at
    start-up by rebuilding the index from it. `progress` gets the files finished per batch.
    """
    outcomes: list[IngestOutcome] = []
    size = rt.settings.ingest_batch_size
    try:
        for start in range(0, len(items), size):
            chunk = list(enumerate(items[start : start + size], start))
            outcomes.extend(_ingest_chunk(rt, chunk, key_id))
            if progress is not None:
                progress(len(chunk))
    finally:
        # A failure part-way may leave earlier batches indexed in memory but not yet saved.
        if any(o.status == "indexed" for o in outcomes) or len(outcomes) < len(items):
            persist_index(rt)
    return outcomes


def _ingest_chunk(
    rt: Runtime, chunk: list[tuple[int, UploadItem]], key_id: str | None
) -> list[IngestOutcome]:
    results: dict[int, IngestOutcome] = {}
    pending, repeats = _prepare(rt, chunk, results)
    known = _existing_ids(rt, [p.sha256 for p in pending])
    for p in pending:
        if p.sha256 in known:
            results[p.position] = IngestOutcome(
                p.position, p.item.filename, "duplicate", id=known[p.sha256]
            )
    accepted = _encode_and_gate(rt, [p for p in pending if p.sha256 not in known], results)
    if accepted:
        results.update(_store(rt, accepted, key_id))
    _resolve_repeats(chunk, repeats, results)
    ordered = [results[position] for position, _ in chunk]
    _audit_refusals(rt, ordered, key_id)
    return ordered


def _prepare(
    rt: Runtime, chunk: list[tuple[int, UploadItem]], results: dict[int, IngestOutcome]
) -> tuple[list[_Pending], dict[int, int]]:
    """Decode and hash; returns decodable files and {position: earlier position with same bytes}."""
    pending: list[_Pending] = []
    first_seen: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for position, item in chunk:
        sha = hashlib.sha256(item.data).hexdigest()
        if sha in first_seen:
            repeats[position] = first_seen[sha]
            continue
        first_seen[sha] = position
        try:
            image = decode_image(item.data, rt.settings.max_image_pixels)
        except ServiceError as exc:
            results[position] = _refusal(position, item, exc)
            continue
        pending.append(_Pending(position, item, sha, image))
    return pending, repeats


def _existing_ids(rt: Runtime, shas: list[str]) -> dict[str, int]:
    if not shas:
        return {}
    with rt.sessions() as session:
        return _existing_in(session, shas)


def _existing_in(session: Session, shas: list[str]) -> dict[str, int]:
    query = select(ImageRecord.sha256, ImageRecord.id).where(ImageRecord.sha256.in_(shas))
    return {sha: image_id for sha, image_id in session.execute(query).all()}


def _encode_and_gate(
    rt: Runtime, pending: list[_Pending], results: dict[int, IngestOutcome]
) -> list[_Pending]:
    encoded = _encode(rt, pending, results)
    accepted = []
    threshold = rt.encoder.ood_threshold
    for p in encoded:
        assert p.ood_score is not None
        if accepts(p.ood_score, threshold):
            accepted.append(p)
            continue
        exc = OutOfDistributionError(
            f"OOD score {p.ood_score:.4g} exceeds the threshold {threshold:.4g}"
        )
        results[p.position] = _refusal(p.position, p.item, exc, p.ood_score)
    return accepted


def _encode(
    rt: Runtime, pending: list[_Pending], results: dict[int, IngestOutcome]
) -> list[_Pending]:
    """Encode as one batch; if the batch fails, encode one by one and refuse the failures."""
    if not pending:
        return []
    try:
        batch = rt.encoder.encode([p.image.pixels for p in pending])
    except Exception:
        if len(pending) == 1:
            err = BadImageError("the model cannot encode this image")
            results[pending[0].position] = _refusal(pending[0].position, pending[0].item, err)
            return []
        return [q for p in pending for q in _encode(rt, [p], results)]
    codes = pack_bits(batch.bits)
    for i, p in enumerate(pending):
        p.code, p.feature, p.ood_score = codes[i], batch.features[i], float(batch.ood_scores[i])
    return pending


def _record(p: _Pending, checkpoint_sha256: str) -> ImageRecord:
    assert p.code is not None and p.feature is not None
    meta = p.item.meta
    return ImageRecord(
        external_id=meta.external_id, label=meta.label, collection=meta.collection,
        modality=p.image.modality, tags=dict(meta.tags), sha256=p.sha256,
        code=p.code.tobytes(), feature=p.feature.astype("<f2").tobytes(),
        checkpoint_sha256=checkpoint_sha256, width=p.image.width, height=p.image.height,
    )  # fmt: skip


def _store(rt: Runtime, accepted: list[_Pending], key_id: str | None) -> dict[int, IngestOutcome]:
    """Commit rows for files not yet stored, then index them; all under the write lock."""
    with rt.write_lock:
        for attempt in range(3):
            try:
                return _store_once(rt, accepted, key_id)
            except IntegrityError:  # another process stored the same bytes meanwhile
                logger.info("content hash clash while storing (attempt %d); retrying", attempt + 1)
        raise IndexWriteFailedError("could not store the images; try again")


def _store_once(
    rt: Runtime, accepted: list[_Pending], key_id: str | None
) -> dict[int, IngestOutcome]:
    out: dict[int, IngestOutcome] = {}
    with rt.sessions() as session:
        known = _existing_in(session, [p.sha256 for p in accepted])
        fresh = [p for p in accepted if p.sha256 not in known]
        records = [_record(p, rt.checkpoint_sha256) for p in fresh]
        session.add_all(records)
        session.flush()
        ids = [r.id for r in records]
        if ids:
            add_event(session, "ingest", key_id, image_ids=ids, info={"files": len(accepted)})
        session.commit()
    for p in accepted:
        if p.sha256 in known:
            out[p.position] = IngestOutcome(
                p.position, p.item.filename, "duplicate", id=known[p.sha256]
            )
    for p, image_id in zip(fresh, ids, strict=True):
        out[p.position] = IngestOutcome(
            p.position, p.item.filename, "indexed", id=image_id, ood_score=p.ood_score
        )
    if fresh:
        _index_rows(rt, fresh, ids)
    return out


def _index_rows(rt: Runtime, fresh: list[_Pending], ids: list[int]) -> None:
    id_array = np.array(ids, dtype=np.int64)
    codes = np.stack([p.code for p in fresh if p.code is not None])
    try:
        rt.index.add(id_array, codes)
    except Exception as exc:
        logger.exception("index add failed; removing the %d new rows again", len(ids))
        with rt.sessions() as session:
            session.execute(delete(ImageRecord).where(ImageRecord.id.in_(ids)))
            session.commit()
        raise IndexWriteFailedError("the index could not be updated; nothing was stored") from exc
    rt.features.add(id_array, np.stack([p.feature for p in fresh if p.feature is not None]))
    rt.filters.invalidate()


def persist_index(rt: Runtime) -> None:
    """Save the index atomically; a failed save is logged (start-up rebuilds it from the DB)."""
    try:
        rt.index.save(rt.settings.index_dir, rt.checkpoint_sha256)
    except Exception:
        logger.exception("could not save the index to %s", rt.settings.index_dir)


def _resolve_repeats(
    chunk: list[tuple[int, UploadItem]], repeats: dict[int, int], results: dict[int, IngestOutcome]
) -> None:
    """Files repeated within one request share the outcome of their first copy."""
    items = dict(chunk)
    for position, first in repeats.items():
        base = results[first]
        status: IngestStatus = "rejected" if base.status == "rejected" else "duplicate"
        results[position] = replace(
            base, position=position, filename=items[position].filename, status=status
        )


def _audit_refusals(rt: Runtime, outcomes: list[IngestOutcome], key_id: str | None) -> None:
    refused = [o for o in outcomes if o.status == "rejected"]
    if not refused:
        return
    ood = [o for o in refused if o.error == "out_of_distribution"]
    info = {"refused": [{"position": o.position, "error": o.error} for o in refused]}
    action = "ood_reject" if ood else "ingest_reject"
    score = ood[0].ood_score if ood else None
    write_event(rt.sessions, action, key_id, ood_score=score, info=info)
