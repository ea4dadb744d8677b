"""A fresh ext4 file system for one benchmark run: a sparse image file, loop-mounted.

Every contender writes its trees there, so all start from the same clean state whatever the
machine's disk went through before. (On an ext4 without a journal, like this machine's root,
inodes freed in the last minutes are skipped one by one when new ones are allocated: creating
30,000 files right after deleting 30,000 took `tar -x` 13.7 s instead of 1.2 s.) The file
system has mkfs.ext4's defaults (with a journal, as a typical Docker host's disk) but twice the inodes. Nothing is
deleted inside it during the run; unmounting and removing the image is the cleanup.

Each benchmark image gets a file system of its own: the trees of the images before it leave
the machine's memory with theirs. (Kept, they filled the page cache twice over, with the file
system's pages and the image file's, and the last images of the suite ran short of free memory,
where every new page costs a reclaim: twice the system time in a test.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

MIN_SIZE = 16 << 30
BYTES_PER_INODE = 8192  # mkfs's default 16384 runs out with ~500,000 small files kept


class ScratchFs:
    """Creates and mounts the file system at construction; `close()` unmounts and removes it."""

    def __init__(self, host_dir: Path, size: int, *, journal: bool = True, name: str = "scratch") -> None:
        for tool in ("mkfs.ext4", "mount", "umount"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"bench: {tool} is missing (e2fsprogs, mount)")
        if os.geteuid() != 0:
            raise RuntimeError("bench: needs root (a loop-mounted scratch file system and a dockerd)")
        self.image = host_dir / f"{name}.ext4"
        self.mountpoint = Path(tempfile.mkdtemp(prefix="emustore-bench-fs-"))
        with self.image.open("wb") as f:
            f.truncate(max(2 * size, MIN_SIZE))  # sparse: only what is written takes space
        features = [] if journal else ["-O", "^has_journal"]  # journal-less: like this machine's root
        subprocess.run(["mkfs.ext4", "-q", "-F", "-i", str(BYTES_PER_INODE), *features, str(self.image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(self.image), str(self.mountpoint)], check=True)

    def close(self) -> None:
        subprocess.run(["umount", str(self.mountpoint)], check=False)
        self.mountpoint.rmdir()
        self.image.unlink()
