"""Scenario `pulls`: each image pulled cold (then warm) by every contender, runs interleaved."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from scripts.bench.contenders import Contender, Floor, Sample, Target
from scripts.bench.images import BenchImage
from scripts.bench.report import ImageResult
from tests.support.imagebuild import ImageBuilder
from tests.support.registry import RegistryServer

DECOMPRESSORS = {"gzip": "gzip -dc", "zstd": "zstd -dcq", "none": "cat"}


@dataclass(frozen=True)
class Pushed:
    """One benchmark image in the registry: what the contenders pull, and what it holds."""

    name: str
    description: str
    target: Target
    layers: int
    compressed: int
    uncompressed: int


def blobs(registry: RegistryServer, repository: str, image: ImageBuilder) -> list[tuple[str, str]]:
    """(URL, the floor's decompressor) of each layer blob of `image` pushed under `repository`."""
    return [
        (f"{registry.url}/v2/{repository}/blobs/{layer.digest}", DECOMPRESSORS[layer.compression])
        for layer in image.layers
    ]


def push(bench: BenchImage, registry: RegistryServer) -> Pushed:
    """Push the image (and its gzip twin, for dockerd 20.10) under bench/<name>:v1 and bench/<name>-twin:v1."""
    repository = f"bench/{bench.name}"
    pushed = bench.image.push(registry.host, repository, "v1")
    twin = bench.twin.push(registry.host, f"{repository}-twin", "v1") if bench.twin else pushed
    layers = bench.image.layers
    target = Target((pushed.reference,), (twin.reference,), tuple(blobs(registry, repository, bench.image)))
    return Pushed(
        bench.name,
        bench.description,
        target,
        len(layers),
        sum(len(layer.blob) for layer in layers),
        sum(len(layer.tar) for layer in layers),
    )


def once(
    contender: Contender, target: Target, warm: bool, before: Callable[[], None] = lambda: None
) -> tuple[Sample, Sample | None]:
    """One cold run (prepared untimed, `before` it, after a sync), and a warm one when `warm`."""
    contender.prepare()
    before()
    os.sync()  # the previous run's writeback does not land in this one's time
    try:
        cold = contender.run(target)
        again = contender.run(target) if warm and not isinstance(contender, Floor) else None
    finally:
        contender.cleanup()
    return cold, again


def measure(image: Pushed, contenders: list[Contender], runs: int, log: Callable[[str], None]) -> ImageResult:
    result = ImageResult(image.name, image.description, image.layers, image.compressed, image.uncompressed)
    for run in range(runs):
        for contender in contenders:
            cold, warm = once(contender, image.target, warm=True)
            result.cold.setdefault(contender.name, []).append(cold)
            if warm is not None:
                result.warm.setdefault(contender.name, []).append(warm)
            log(f"  {image.name} run {run + 1}/{runs} {contender.name}: {cold.seconds:.2f}s")
    return result


def needed_space(image: Pushed, runs: int, contenders: int) -> int:
    """Every run's tree is kept until the image's end, plus a fifth for metadata (and the
    containerd store's second copy of the blobs)."""
    return int(contenders * runs * (image.uncompressed + image.compressed) * 1.2)
