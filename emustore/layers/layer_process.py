"""A layer's whole one-pass unpacking (pipeline.unpack_layer) in a forked child, fed the blob.

The parent keeps the network and the progress; each layer's decompression, hashing, tar
parsing and tar-split run in a process of their own, so that layers unpack side by side on
every core instead of taking turns at the parent's GIL. The child forks its extraction
process in turn (extract_process.py). Its result, or its error, comes back pickled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from emustore.errors import EmustoreError, LayerError
from emustore.layers.forking import Worker
from emustore.layers.pipeline import LayerResult, UnpackOptions, kept_blob, unpack_layer


def unpack_layer_forked(
    compressed: Iterable[bytes],
    blob_digest: str,
    diff_dir: str,
    tar_split_path: str | None,
    options: UnpackOptions = UnpackOptions(),
    on_bytes: Callable[[int], None] | None = None,
    blob_path: str | None = None,
) -> LayerResult:
    """unpack_layer's result and errors, its work done by a forked child; `on_bytes` is called
    here, as the blob goes by, and with `blob_path` the blob is written there here too (kept_blob)."""
    if blob_path is not None:
        with kept_blob(compressed, blob_path) as kept:
            return unpack_layer_forked(kept, blob_digest, diff_dir, tar_split_path, options, on_bytes)
    worker = Worker(lambda chunks: _unpack(chunks, blob_digest, diff_dir, tar_split_path, options))
    try:
        for chunk in compressed:
            if on_bytes is not None:
                on_bytes(len(chunk))
            if not worker.send(chunk):
                break  # the child ended early: its error says why
        result = worker.finish()
    except BaseException:
        worker.abort()
        raise
    if result is None:
        raise LayerError("failed to register layer: the layer process ended with %s" % worker.exit)
    if isinstance(result, BaseException):
        raise result
    assert isinstance(result, LayerResult)
    return result


def _unpack(
    chunks: Iterator[bytes], blob_digest: str, diff_dir: str, tar_split_path: str | None, options: UnpackOptions
) -> object:  # pragma: no cover
    """In the child: the result, or the error to raise in the parent."""
    try:
        return unpack_layer(chunks, blob_digest, diff_dir, tar_split_path, options)
    except EmustoreError as exc:
        return exc
    except Exception as exc:  # a bug or an OS error: still one line for the user
        return LayerError("failed to register layer: %s" % exc)
