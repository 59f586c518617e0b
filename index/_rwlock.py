"""A small writer-preferring readers-writer lock (the standard library has none)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType


class ReadWriteLock:
    """Many readers at once, or one writer alone. Not re-entrant: do not nest acquisitions.

    Waiting writers block new readers, so a steady stream of searches cannot starve an update.
    `read()` and `write()` return plain context-manager objects (no generator per use: this lock
    sits on the per-query search path).
    """

    def __init__(self) -> None:
        # The condition shares this mutex; the read path takes the mutex directly (cheaper
        # than entering the condition) and waits on the condition only when it must.
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._read = _Guard(self.acquire_read, self.release_read)
        self._write = _Guard(self.acquire_write, self.release_write)

    def read(self) -> _Guard:
        return self._read

    def write(self) -> _Guard:
        return self._write

    def acquire_read(self) -> None:
        with self._mutex:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._mutex:
            self._readers -= 1
            # Only a waiting writer waits for the readers to drain (readers wait for writers).
            if self._readers == 0 and self._writers_waiting:
                self._cond.notify_all()

    def acquire_write(self) -> None:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


class _Guard:
    """Stateless `with` adapter around an acquire/release pair (safe to share between threads)."""

    __slots__ = ("_acquire", "_release")

    def __init__(self, acquire: Callable[[], None], release: Callable[[], None]) -> None:
        self._acquire = acquire
        self._release = release

    def __enter__(self) -> None:
        self._acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()
