"""The heavy, shared resources of a running service, built once and handed to every request."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import faiss
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from app.db.session import make_engine, make_session_factory
from app.services.features import FeatureStore
from app.services.filters import FilterCache
from app.services.reconcile import reconcile_index
from app.settings import Settings
from index import BinaryIndex, rerank_kernel
from models.checkpoint import ACIRCheckpoint, load_checkpoint
from models.encoder import ImageEncoder

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Model, index, feature store and database handles of one service instance."""

    settings: Settings
    checkpoint: ACIRCheckpoint
    encoder: ImageEncoder
    engine: Engine
    sessions: sessionmaker[Session]
    index: BinaryIndex
    features: FeatureStore
    index_source: str  # "loaded" from disk or "rebuilt" from the database
    # Serialises writers (DB row + index entry + save) so the two never diverge in memory.
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    filters: FilterCache = field(default_factory=FilterCache)

    @property
    def checkpoint_sha256(self) -> str:
        return self.checkpoint.sha256

    def database_ok(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:  # any driver error means "not ready"
            logger.warning("database check failed", exc_info=True)
            return False

    def close(self) -> None:
        self.engine.dispose()


def open_runtime(settings: Settings, checkpoint: ACIRCheckpoint | None = None) -> Runtime:
    """Load the checkpoint, connect to the (already migrated) database, reconcile the index."""
    # Single-query searches lose more to OpenMP start-up than they gain from a second thread;
    # concurrency comes from serving several requests at once instead.
    faiss.omp_set_num_threads(settings.faiss_threads)
    ckpt = checkpoint if checkpoint is not None else load_checkpoint(settings.checkpoint)
    encoder = ImageEncoder(ckpt, threads=settings.torch_threads)
    rerank_kernel.warm_up()  # compile (or load) it now, not during the first search
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    try:
        index, features, source = reconcile_index(
            sessions, settings.index_dir, ckpt.bits, encoder.feature_dim, ckpt.sha256
        )
    except Exception:
        engine.dispose()
        raise
    return Runtime(settings, ckpt, encoder, engine, sessions, index, features, source)
