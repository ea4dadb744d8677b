"""Scenario `aged`: pulls on a file system that has just had many files deleted, beside the same
pulls on a fresh one of the same kind.

Each aged run gets a file system of its own; before the run (untimed, once the contender's root
or daemon is ready) `age()` creates many small files in many directories inside that root and
deletes them, as `rmi` and `prune` do inside a long-lived /var/lib/docker. The fresh file system
never has anything deleted. On ext4 without a journal the inode allocator passes over inodes
freed in the last minute one by one, so creating files where many were just freed is slow; ext4
makes that check only without a journal (`--aged-journal` measures that case).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from scripts.bench.contenders import Contender
from scripts.bench.pulls import Pushed, once
from scripts.bench.report import AgedResult

PER_DIR = 200
DATA = b"x" * 2048


def age(fs: Path, files: int) -> None:
    """Create `files` small files (PER_DIR per directory) under `fs`, sync, delete them, sync."""
    top = Path(tempfile.mkdtemp(prefix="aging-", dir=fs))
    for i in range(files):
        directory = top / str(i // PER_DIR)
        if i % PER_DIR == 0:
            directory.mkdir()
        fd = os.open(directory / str(i), os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, DATA)
        os.close(fd)
    os.sync()
    shutil.rmtree(top)
    os.sync()


AgedFs = Callable[[str], AbstractContextManager[tuple[Path, list[Contender]]]]


def measure(
    image: Pushed, fresh: list[Contender], aged_fs: AgedFs, deleted: int, runs: int, log: Callable[[str], None]
) -> AgedResult:
    """`fresh`: the contenders on the fresh file system; `aged_fs(name)`: a new file system of the
    same kind with contender `name` on it, aged once before its run (each aged run gets its own:
    deletions from an earlier run would add to the next one's)."""
    result = AgedResult(image.name, deleted)
    for run in range(runs):
        for on_fresh in fresh:
            sample, _ = once(on_fresh, image.target, warm=False)
            result.fresh.setdefault(on_fresh.name, []).append(sample)
            with aged_fs(on_fresh.name) as (_, (on_aged,)):
                aged, _ = once(on_aged, image.target, warm=False, before=lambda: age(on_aged.home(), deleted))
            result.aged.setdefault(on_aged.name, []).append(aged)
            log(f"  {image.name} run {run + 1}/{runs} {on_fresh.name}: fresh {sample.seconds:.2f}s aged {aged.seconds:.2f}s")
    return result
