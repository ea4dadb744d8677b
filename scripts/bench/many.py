"""Scenario `many`: lists of images sharing a base, pulled by one command (emustore pull REF…)
or one `docker pull` after another, against the floor for the union of their blobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from scripts.bench.contenders import Contender, Target
from scripts.bench.pulls import blobs, once
from scripts.bench.report import ManyResult
from tests.support.imagebuild import ImageBuilder
from tests.support.registry import RegistryServer

CONTENDERS = ("emustore", "emustore-containerd", "docker-20.10", "docker-28", "floor")


@dataclass(frozen=True)
class PushedList:
    """The first `images` of the pushed images: what each contender pulls."""

    images: int
    target: Target
    compressed: int
    uncompressed: int


def union(items: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """`items` without repeats of the same blob digest (the URL's last part), first one kept."""
    seen: set[str] = set()
    out = []
    for url, decompress in items:
        digest = url.rsplit("/", 1)[-1]
        if digest not in seen:
            seen.add(digest)
            out.append((url, decompress))
    return tuple(out)


def push_all(images: list[ImageBuilder], registry: RegistryServer, sizes: list[int]) -> list[PushedList]:
    """Push `images` as bench/many-<i>:v1; one PushedList per size (a prefix of the images)."""
    refs, floor = [], []
    for i, image in enumerate(images[: max(sizes)]):
        repository = f"bench/many-{i}"
        refs.append(image.push(registry.host, repository, "v1").reference)
        floor.append(blobs(registry, repository, image))
    sizes_of = {layer.digest: (len(layer.blob), len(layer.tar)) for image in images for layer in image.layers}
    out = []
    for size in sorted(sizes):
        chosen = {layer.digest for image in images[:size] for layer in image.layers}
        target = Target(tuple(refs[:size]), tuple(refs[:size]), union([b for per in floor[:size] for b in per]))
        compressed = sum(sizes_of[d][0] for d in chosen)
        out.append(PushedList(size, target, compressed, sum(sizes_of[d][1] for d in chosen)))
    return out


def measure(pushed: PushedList, contenders: list[Contender], runs: int, log: Callable[[str], None]) -> ManyResult:
    result = ManyResult(pushed.images, len(pushed.target.blobs), pushed.compressed)
    for run in range(runs):
        for contender in contenders:
            cold, _ = once(contender, pushed.target, warm=False)
            result.cold.setdefault(contender.name, []).append(cold)
            log(f"  {pushed.images} images run {run + 1}/{runs} {contender.name}: {cold.seconds:.2f}s")
    return result
