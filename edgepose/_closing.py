"""Closeable: the one close() discipline shared by runners and CUDA resources."""

from __future__ import annotations


class Closeable:
    """Frees its resources in `close()`, once, also as a context manager and, best
    effort, on garbage collection. Subclasses implement `_release()`.
    """

    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            # Marked first: a _release() that raises must not be retried by __del__.
            self.closed = True
            self._release()

    def _release(self) -> None:  # pragma: no cover - overridden where there is something to free
        """Free what this object holds; called once."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter shutdown modules may be torn down
            pass
