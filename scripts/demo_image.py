"""Build and push a sample image with the test image factory; print the pushed reference.

Run from anywhere (the script puts the repository root on sys.path itself):

    .venv/bin/python scripts/demo_image.py --registry 127.0.0.1:5000 --repository demo/bb --tag v1

The image (Docker schema 2, gzip) has four layers, like Appendix A of
docs/docker-store-format.md: busybox, its applet symlinks, a layer with a few files, and a
layer with whiteouts and an opaque directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.imagefactory import ImageBuilder, LayerBuilder, busybox_image  # noqa: E402


def demo_image() -> ImageBuilder:
    files = (
        LayerBuilder()
        .dir("app/")
        .file("app/hello.txt", b"hello from emustore\n")
        .file("app/run.sh", b"#!/bin/sh\necho running\n", mode=0o755)
        .file("app/old.txt", b"deleted by the next layer\n")
        .dir("app/cache/")
        .file("app/cache/a", b"hidden by the opaque marker\n")
    )
    deletions = (
        LayerBuilder()
        .dir("app/")
        .whiteout("app/old.txt")
        .dir("app/cache/")
        .opaque("app/cache")
        .file("app/cache/b", b"the only file left in app/cache\n")
    )
    return busybox_image().layer(files, created_by="COPY app /app").layer(deletions, created_by="cleanup")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="HOST:PORT on 127.0.0.0/8")
    parser.add_argument("--repository", required=True, help="e.g. demo/bb")
    parser.add_argument("--tag", required=True)
    args = parser.parse_args(argv)
    pushed = demo_image().push(args.registry, args.repository, args.tag)
    print(pushed.reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
