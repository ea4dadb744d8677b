""""A consistent data root" for the robustness tests: `emustore fsck` finds no problem in it.

fsck (emustore/fsck.py) checks what dockerd needs to load the root: repositories.json valid and
pointing at images whose configs verify and whose chains load; layerdb entries complete with
chain ids that recompute; overlay2 dirs with diff/, link, l/ symlink, lower/work; sizes and diff
ids recomputed. Its `leftover` findings (staging, write-sets, temp files, orphan overlay2 dirs
and their links) are harmless to dockerd and kept apart here: `fsck --repair` removes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emustore.errors import StoreError
from emustore.fsck import check, repair
from emustore.stores.docker.layout import DataRoot
from emustore.stores.docker.references import ReferenceStore


@dataclass
class RootReport:
    problems: list[str] = field(default_factory=list)  # dockerd would not load or would misread these
    leftovers: list[Path] = field(default_factory=list)  # scratch of interrupted work, for --repair
    images: dict[str, str] = field(default_factory=dict)  # "repo:tag" / "repo@digest" key → image id

    @property
    def consistent(self) -> bool:
        return not self.problems


def check_root(root: Path) -> RootReport:
    """fsck's verdict on `root` (a root that was never created is consistent and empty)."""
    report = RootReport()
    if not root.exists():
        return report
    for problem in check(root):
        if problem.leftover:
            report.leftovers.append(problem.path)
        else:
            report.problems.append(str(problem))
    try:
        repos = ReferenceStore(DataRoot(root.absolute())).load()
    except StoreError:
        return report
    report.images = {key: image_id for refs in repos.values() for key, image_id in refs.items()}
    return report


def remove_leftovers(root: Path) -> list[Path]:
    """What `emustore fsck --repair` does: remove every leftover, return them."""
    return repair(root)
