"""Audit trail writes: who searched, ingested, deleted or was refused, and when."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db.models import AuditEvent

logger = logging.getLogger(__name__)


def add_event(
    session: Session,
    action: str,
    key_id: str | None,
    *,
    image_ids: Sequence[int] = (),
    result_ids: Sequence[int] = (),
    ood_score: float | None = None,
    info: dict[str, Any] | None = None,
) -> None:
    """Stage an audit row in `session` (the caller's commit makes it durable with its change)."""
    session.add(
        AuditEvent(
            action=action,
            key_id=key_id,
            image_ids=[int(i) for i in image_ids],
            result_ids=[int(i) for i in result_ids],
            ood_score=None if ood_score is None else float(ood_score),
            request_info=dict(info or {}),
        )
    )


def write_event(
    sessions: sessionmaker[Session], action: str, key_id: str | None, **kw: Any
) -> None:
    """Write one audit row in its own transaction; a failure is logged, never raised to a reader."""
    try:
        with sessions() as session:
            add_event(session, action, key_id, **kw)
            session.commit()
    except Exception:
        logger.exception("could not write %s audit event", action)
