"""The benchmark run: build and push the images, then time the contenders interleaved."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.bench.contenders import Docker, Emustore, Floor
from scripts.bench.images import BenchImage, bench_images
from scripts.bench.report import HOW_TO_READ, ImageResult, machine, median, peak_rss, render, spread
from scripts.bench.scratch import ScratchFs
from tests.support.imagefactory import PushedImage
from tests.support.registry import RegistryServer

DOCS = Path(__file__).resolve().parents[2] / "docs" / "benchmark.md"
DECOMPRESSORS = {"gzip": "gzip -dc", "zstd": "zstd -dcq", "none": "cat"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small images, 3 runs: a check that it all works")
    p.add_argument("--runs", type=int, help="cold runs per image and contender (default 5, quick 3)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these images (e.g. mixed bigfiles-128)")
    p.add_argument("--concurrency", type=int, help="passed to emustore pull --concurrency")
    p.add_argument(
        "--output", type=Path, help=f"markdown file to write (default {DOCS.relative_to(DOCS.parents[1])}; quick: none)"
    )
    return p.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Pushed:
    """One benchmark image in the registry: what each contender pulls, and what it holds."""

    name: str
    description: str
    image: PushedImage
    twin: PushedImage  # what dockerd pulls (the image itself unless it cannot)
    layers: int
    compressed: int
    uncompressed: int
    decompressors: list[str]  # the floor's shell filter per layer


def push(bench: BenchImage, registry: RegistryServer) -> Pushed:
    """Push the image (and its gzip twin, for dockerd) under bench/<name>:v1 and bench/<name>-twin:v1."""
    pushed = bench.image.push(registry.host, f"bench/{bench.name}", "v1")
    twin = bench.twin.push(registry.host, f"bench/{bench.name}-twin", "v1") if bench.twin else pushed
    layers = bench.image.layers
    return Pushed(
        bench.name,
        bench.description,
        pushed,
        twin,
        len(layers),
        sum(len(layer.blob) for layer in layers),
        sum(len(layer.tar) for layer in layers),
        [DECOMPRESSORS[layer.compression] for layer in layers],
    )


def measure(image: Pushed, contenders: tuple[Emustore, Docker, Floor], runs: int) -> ImageResult:
    emustore, docker, floor = contenders
    result = ImageResult(
        image.name,
        image.description,
        image.layers,
        image.compressed,
        image.uncompressed,
        cold={"emustore": [], "docker": [], "floor": []},
        warm={"emustore": [], "docker": []},
    )
    for run in range(runs):
        for contender in (emustore, docker, floor):
            target = image.twin if contender is docker else image.image
            contender.prepare(target)
            os.sync()  # the previous run's writeback does not land in this one's time
            try:
                if contender is floor:
                    sample = floor.run(target, image.decompressors)
                else:
                    sample = contender.run(target)
                    result.warm[contender.name].append(contender.run(target))  # again: warm
            finally:
                contender.cleanup()
            result.cold[contender.name].append(sample)
            log(f"  {image.name} run {run + 1}/{runs} {contender.name}: {sample.seconds:.2f}s")
    return result


def needed_space(image: Pushed, runs: int) -> int:
    """Every run's tree of an image is kept until its end: three contenders, plus a fifth for metadata."""
    return int(3 * runs * image.uncompressed * 1.2)


def summary(result: ImageResult) -> str:
    e, d, f = (median(result.cold[n]) for n in ("emustore", "docker", "floor"))
    return (
        f"{result.name}: emustore {spread(result.cold['emustore'])}  docker {spread(result.cold['docker'])}  "
        f"floor {spread(result.cold['floor'])}  emustore/docker {e / d:.2f}  emustore/floor {e / f:.2f}  "
        f"peak RSS {peak_rss(result.cold['emustore'])}  warm {spread(result.warm['emustore'])}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)
    output = args.output if args.output is not None else (None if args.quick else DOCS)
    for tool in (Path("/usr/bin/curl"), Path("/usr/bin/zstd")):
        if not tool.exists():
            log(f"bench: {tool} is missing (run `make setup` as root)")
            return 1
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # still unmount and clean up
    started = time.monotonic()
    machine_line = machine()
    hostdir = Path(tempfile.mkdtemp(prefix="emustore-bench-"))
    registry = RegistryServer()
    docker: Docker | None = None
    scratch: ScratchFs | None = None
    try:
        log("building the benchmark images from files on this machine ...")
        images = []
        for name, build in bench_images(args.quick).items():
            if not args.only or name in args.only:
                images.append(push(build(), registry))
                log(f"{name}: {images[-1].description}")
        needed = max(needed_space(image, runs) for image in images)
        if shutil.disk_usage(hostdir).free < needed:
            log(f"bench: {needed / 1e9:.1f} GB free needed under {hostdir}")
            return 1
        results = []
        for image in images:  # each on a fresh file system: the trees of earlier images leave memory with it
            scratch = ScratchFs(hostdir, needed_space(image, runs))
            workdir = scratch.mountpoint
            docker = Docker(workdir)
            contenders = (Emustore(workdir, args.concurrency), docker, Floor(workdir, registry.url))
            results.append(measure(image, contenders, runs))
            log(summary(results[-1]))
            docker.stop()
            docker = None
            scratch.close()
            scratch = None
    finally:
        if docker is not None:
            docker.stop()
        registry.stop()
        if scratch is not None:
            scratch.close()
        shutil.rmtree(hostdir, ignore_errors=True)
    page = render(results, runs, machine_line, HOW_TO_READ)
    print(page)
    if output is not None:
        output.write_text(page)
        log(f"wrote {output}")
    log(f"bench took {time.monotonic() - started:.0f}s")
    return 0
