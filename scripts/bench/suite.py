"""The benchmark run: build and push the images, then run the chosen scenarios, each contender on
a fresh root on a fresh loop-mounted file system, runs interleaved; print and record the page."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from scripts.bench import aged, bigroot, many, pulls
from scripts.bench.contenders import Contender, contenders
from scripts.bench.images import bench_images, shared_base
from scripts.bench.report import SCENARIOS, explained, machine, merge, render_aged, render_bigroot, render_many, render_pulls
from scripts.bench.scratch import ScratchFs
from tests.support.registry import RegistryServer

DOCS = Path(__file__).resolve().parents[2] / "docs" / "benchmark.md"
RUNS = {"pulls": 3, "many": 2, "aged": 2, "bigroot": 3}  # per scenario; --quick: 1, --runs N: N
AGED_IMAGES = ("debian-minbase",)  # smallfiles when the Debian images cannot be built
AGED_DELETED = 100_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small images and roots, 1 run: a check that it all works")
    p.add_argument("--only", nargs="+", choices=SCENARIOS, metavar="SCENARIO", help=f"only these of {', '.join(SCENARIOS)}")
    p.add_argument("--runs", type=int, help="runs per measurement in every scenario (default: " + ", ".join(f"{k} {v}" for k, v in RUNS.items()) + ")")
    p.add_argument("--images", nargs="+", metavar="NAME", help="pulls: only these images (e.g. mixed debian-python)")
    p.add_argument("--contenders", nargs="+", metavar="NAME", help="only these contenders (e.g. emustore docker-28 floor)")
    p.add_argument("--many-sizes", nargs="+", type=int, metavar="N", help="many: list lengths (default 2 5 10; quick 2 3)")
    p.add_argument("--aged-images", nargs="+", metavar="NAME", help=f"aged: images (default {' '.join(AGED_IMAGES)})")
    p.add_argument("--aged-deleted", type=int, help=f"aged: files deleted before each aged run (default {AGED_DELETED})")
    p.add_argument("--aged-journal", action="store_true", help="aged: both file systems with a journal (default: without, as this machine's root)")
    p.add_argument("--bigroot-sizes", nargs=2, type=int, metavar=("SMALL", "LARGE"), help="bigroot: images in the two roots (default 50 500; quick 10 40)")
    p.add_argument("--concurrency", type=int, help="passed to emustore pull --concurrency")
    p.add_argument("--output", type=Path, help=f"page to update (default {DOCS.relative_to(DOCS.parents[1])}; quick: none)")
    return p.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    """One run's shared state: the registry, a host dir for file system images, the options."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.registry = RegistryServer()
        self.hostdir = Path(tempfile.mkdtemp(prefix="emustore-bench-"))
        self.machine = machine()
        self.built: dict[str, pulls.Pushed] = {}

    def close(self) -> None:
        self.registry.stop()
        shutil.rmtree(self.hostdir, ignore_errors=True)

    def runs(self, scenario: str) -> int:
        return self.args.runs or (1 if self.args.quick else RUNS[scenario])

    def image(self, name: str) -> pulls.Pushed | None:
        """Built and pushed once per run; None (logged) when it cannot be built here."""
        if name not in self.built:
            builders = bench_images(self.args.quick)
            if name not in builders:
                raise SystemExit(f"bench: no image {name!r} (known: {', '.join(builders)})")
            try:
                self.built[name] = pulls.push(builders[name](), self.registry)
            except RuntimeError as exc:
                log(f"bench: skipping {name}: {exc}")
                return None
            log(f"{name}: {self.built[name].description}")
        return self.built[name]

    @contextmanager
    def scratch(self, size: int, names: tuple[str, ...] | None = None, **fs: bool | str) -> Iterator[tuple[Path, list[Contender]]]:
        """A fresh file system and the contenders working on it (stopped and unmounted after)."""
        filesystem = ScratchFs(self.hostdir, size, **fs)  # type: ignore[arg-type]
        chosen: list[Contender] = []
        try:
            wanted = tuple(self.args.contenders) if self.args.contenders else None
            chosen = [c for c in contenders(filesystem.mountpoint, self.args.concurrency, names) if wanted is None or c.name in wanted]
            yield filesystem.mountpoint, chosen
        finally:
            for contender in chosen:
                contender.stop()
            filesystem.close()

    def pulls(self) -> str:
        runs = self.runs("pulls")
        names = self.args.images or list(bench_images(self.args.quick))
        results = []
        for name in names:
            image = self.image(name)
            if image is None:
                continue
            with self.scratch(pulls.needed_space(image, runs, 7)) as (_, chosen):
                results.append(pulls.measure(image, chosen, runs, log))
        return render_pulls(results, runs, self.machine)

    def many(self) -> str:
        runs = self.runs("many")
        sizes = self.args.many_sizes or ([2, 3] if self.args.quick else [2, 5, 10])
        described, images = shared_base(max(sizes), self.args.quick)
        lists = many.push_all(images, self.registry, sizes)
        results = []
        for pushed in lists:
            with self.scratch(int(len(many.CONTENDERS) * runs * pushed.uncompressed * 1.5), many.CONTENDERS) as (_, chosen):
                results.append(many.measure(pushed, chosen, runs, log))
        return render_many(results, described + ", an application layer of its own and a config file", runs, self.machine)

    def aged(self) -> str:
        runs = self.runs("aged")
        deleted = self.args.aged_deleted or (20_000 if self.args.quick else AGED_DELETED)
        journal = self.args.aged_journal
        results = []
        for name in self.args.aged_images or AGED_IMAGES:
            image = self.image(name) or self.image("smallfiles")
            if image is None:
                continue
            size = pulls.needed_space(image, runs, 7)
            with self.scratch(size, journal=journal, name="fresh") as (_, fresh):
                aged_fs = partial(self.scratch, pulls.needed_space(image, 1, 1), journal=journal, name="aged")
                results.append(aged.measure(image, fresh, lambda name: aged_fs((name,)), deleted, runs, log))
        fs = (
            "ext4 " + ("with" if journal else "without") + " a journal, loop-mounted: one for the image's fresh "
            "runs, and one of its own for each aged run"
        )
        return render_aged(results, fs, runs, self.machine)

    def bigroot(self) -> str:
        runs = self.runs("bigroot")
        small, large = self.args.bigroot_sizes or ((10, 40) if self.args.quick else (50, 500))
        daemon_dir = Path(tempfile.mkdtemp(prefix="bk", dir="/tmp"))  # short: unix socket paths
        try:
            with self.scratch(4 << 30, names=()) as (workdir, _):
                result = bigroot.measure(self.registry, workdir, daemon_dir, (small, large), runs, log)
        finally:
            shutil.rmtree(daemon_dir, ignore_errors=True)
        return render_bigroot(result, runs, self.machine)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output = args.output if args.output is not None else (None if args.quick else DOCS)
    for tool in (Path("/usr/bin/curl"), Path("/usr/bin/zstd")):
        if not tool.exists():
            log(f"bench: {tool} is missing (run `make setup` as root)")
            return 1
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # still unmount and clean up
    started = time.monotonic()
    bench = Bench(args)
    sections = {}
    try:
        for scenario in args.only or SCENARIOS:
            log(f"== {scenario}")
            sections[scenario] = getattr(bench, scenario)()
            log(f"== {scenario} done at {time.monotonic() - started:.0f}s")
    finally:
        bench.close()
    old = output.read_text() if output is not None and output.exists() else ""
    page = merge(old, sections, explained())
    print(page)
    if output is not None:
        output.write_text(page)
        log(f"wrote {output}")
    log(f"bench took {time.monotonic() - started:.0f}s")
    return 0
