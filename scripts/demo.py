"""`make demo`: a local registry, a sample image pushed to it, pulled into ./fake-docker, shown.

Starts Debian's docker-registry on a free loopback port, pushes the sample image of
scripts/demo_image.py, runs `emustore pull` into ./fake-docker (replacing an earlier demo
root), prints the resulting tree with modes and the small metadata files' contents, and
stops the registry again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.demo_image import demo_image  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

SHOWN_CONTENT = {"cache-id", "diff", "size", "parent", "link", "lower", "repositories.json"}
SKIPPED = {"tmp"}


def describe(path: Path, root: Path) -> str:
    st = os.lstat(path)
    rel = path.relative_to(root)
    kind = stat.filemode(st.st_mode)
    line = f"{kind} {st.st_uid}:{st.st_gid}  {rel}"
    if stat.S_ISLNK(st.st_mode):
        return line + " -> " + os.readlink(path)
    if stat.S_ISCHR(st.st_mode):
        return line + f"  (char {os.major(st.st_rdev)}/{os.minor(st.st_rdev)}: a whiteout)"
    if stat.S_ISDIR(st.st_mode):
        try:
            if os.getxattr(path, "trusted.overlay.opaque") == b"y":
                line += "  (trusted.overlay.opaque=y)"
        except OSError:
            pass
        return line
    if path.name in SHOWN_CONTENT or path.parent.name == "sha256" and "distribution" in path.parts:
        text = path.read_bytes()[:160].decode("utf-8", "replace")
        return line + f"  = {text!r}"
    return line + f"  ({st.st_size} bytes)"


def show_tree(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not (here == root and d in SKIPPED))
        if here.name == "diff" and here != root:
            # a layer's files: show at most a few entries per directory
            filenames = sorted(filenames)[:6]
        print(describe(here, root) if here != root else f"{root}/")
        for name in sorted(filenames):
            print(describe(here / name, root))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO / "fake-docker"), help="where to pull (default ./fake-docker)")
    args = parser.parse_args()
    root = Path(args.root)
    if root.exists():
        shutil.rmtree(root)
    with RegistryServer() as registry:
        pushed = demo_image().push(registry.host, "demo/busybox", "v1")
        print(f"== pushed {pushed.reference} to a docker-registry on {registry.host}\n")
        print(f"== emustore pull {pushed.reference} --root {root}\n", flush=True)
        subprocess.run([sys.executable, "-m", "emustore", "pull", pushed.reference, "--root", str(root)], check=True)
    print(f"\n== the data root dockerd would have written ({root})\n")
    show_tree(root)
    print(f"\nTry: dockerd --data-root {root} … then docker images / docker run demo image (see README).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
