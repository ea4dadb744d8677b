"""Running a chunk iterator in its own thread, a few chunks ahead of the consumer.

A layer's download, blob hash and decompression (C code that releases the GIL) then overlap
with the tar parsing and extraction that consume the chunks. Errors of the producer are
raised in the consumer; `close()` stops the producer and waits for it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

DEPTH = 4  # chunks held ahead (each up to compression.BATCH bytes)
_END = object()
_POLL = 0.1


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetched:
    """Iterates `chunks` as produced by a background thread; always `close()` it after use."""

    def __init__(self, chunks: Iterator[bytes], depth: int = DEPTH) -> None:
        self._chunks = chunks
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="prefetch", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for chunk in self._chunks:
                if not self._put(chunk):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failure(exc))
            return
        self._put(_END)

    def _put(self, item: object) -> bool:
        """Queue `item` unless the consumer closed: False when it did."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Stop the producer (it finishes its current chunk) and wait for it."""
        self._stop.set()
        self._thread.join()
