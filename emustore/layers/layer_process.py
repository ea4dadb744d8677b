"""A layer's whole one-pass unpacking (pipeline.unpack_layer) in a forked child, fed the blob.

The parent keeps the network and the progress; each layer's decompression, hashing, tar
parsing and tar-split run in a process of their own, so that layers unpack side by side on
every core instead of taking turns at the parent's GIL. The child forks its extraction
process in turn (extract_process.py). Its result, or its error, comes back pickled.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable, Iterable
from typing import Any

from emustore.errors import EmustoreError, LayerError
from emustore.layers.forking import become_worker, read_all, read_chunks, write_all
from emustore.layers.pipeline import LayerResult, unpack_layer


def unpack_layer_forked(
    compressed: Iterable[bytes], *args: Any, on_bytes: Callable[[int], None] | None = None, **options: Any
) -> LayerResult:
    """unpack_layer(compressed, blob_digest, diff_dir, tar_split_path, **options): the same result and
    errors, its work done by a forked child; `on_bytes` is called here, as the blob goes by."""
    data_read, data_write = os.pipe()
    results_read, results_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child ends in os._exit
        _child(data_read, results_write, args, options)
    os.close(data_read)
    os.close(results_write)
    try:
        for chunk in compressed:
            if on_bytes is not None:
                on_bytes(len(chunk))
            if not write_all(data_write, chunk):
                break  # the child ended early: its error says why
        os.close(data_write)
        data_write = -1
        payload = read_all(results_read)
        _, status = os.waitpid(pid, 0)
        pid = 0
    except BaseException:
        if pid > 0:  # not reaped yet: stop it
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    finally:
        if data_write >= 0:
            os.close(data_write)
        os.close(results_read)
    if not payload:
        raise LayerError("failed to register layer: the layer process ended with status %d" % status)
    result = pickle.loads(payload)
    if isinstance(result, BaseException):
        raise result
    return result


def _child(data: int, results: int, args: tuple[Any, ...], options: dict[str, Any]) -> None:  # pragma: no cover
    """Unpack the blob arriving on `data`; the result or the error goes back on `results`."""
    try:
        become_worker({data, results})
        try:
            outcome: object = unpack_layer(read_chunks(data), *args, **options)
        except EmustoreError as exc:
            outcome = exc
        except Exception as exc:  # a bug or an OS error: still one line for the user
            outcome = LayerError("failed to register layer: %s" % exc)
        write_all(results, pickle.dumps(outcome))
    except BaseException:
        os._exit(70)
    os._exit(0)
