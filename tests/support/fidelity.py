"""The fidelity pulls every engine tier performs: the factory suite, pushed once per session, and
the pull sequence (each image, a re-pull, a pull by digest, a moved tag) run by an engine and by
emustore alike; plus the layer digests of a `docker save` archive."""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.imagefactory import FACTORY_SUITE, PushedImage, busybox_image

SUITE_REPOSITORY = "suite"
# 20.10 cannot pull zstd layers (engines.md §2 row 5): its tiers pull the gzip twins instead
PULLABLE_BY_2010 = tuple(name for name, build in FACTORY_SUITE.items() if not build().needs_gzip_twin)


def push_factory_suite(registry_host: str) -> dict[str, PushedImage]:
    """Every FACTORY_SUITE image as `suite/<name>:v1`."""
    return {name: build().push(registry_host, f"{SUITE_REPOSITORY}/{name}", "v1") for name, build in FACTORY_SUITE.items()}


@dataclass(frozen=True)
class PullSequence:
    """Pull `before` in order, call `move()` (the tag of `moving` then names another image), pull
    `moving.reference` again."""

    before: tuple[str, ...]
    moving: PushedImage
    move: Callable[[], None]


def pull_sequence(images: dict[str, PushedImage], registry_host: str, moving_repository: str) -> PullSequence:
    """Every image of `images` (which must hold "whiteouts"), the first again (a no-op pull), the
    whiteouts image by digest (digest key only), and `moving_repository:v1` before and after it moves.

    `moving_repository` must be the caller's own: the sequence pushes over it."""
    moving = busybox_image("docker", cmd=["sh"]).push(registry_host, moving_repository, "v1")
    references = [image.reference for image in images.values()] + [moving.reference]
    references.append(references[0])
    references.append(images["whiteouts"].digest_reference)

    def move() -> None:
        busybox_image("oci", cmd=["true"]).push(registry_host, moving_repository, "v1")

    return PullSequence(tuple(references), moving, move)


def saved_layer_digests(archive: Path) -> list[str]:
    """sha256 of every layer tar of a `docker save` archive, in manifest order."""
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        digests = []
        for layer in manifest["Layers"]:
            member = tf.extractfile(layer)
            assert member is not None
            digests.append("sha256:" + hashlib.file_digest(member, "sha256").hexdigest())
        return digests
