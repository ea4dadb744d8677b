"""A layer's size as dockerd records it in layerdb/<chain>/size."""

from __future__ import annotations

import os
import stat


def layer_size(diff_dir: str) -> int:
    """dockerd's layer size: st_size of every non-directory, each inode once (pkg/directory)."""
    seen: set[int] = set()
    total = 0
    stack = [diff_dir]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif st.st_size and st.st_ino not in seen:
                    seen.add(st.st_ino)
                    total += st.st_size
    return total
