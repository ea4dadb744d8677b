"""Scenario `bigroot`: emustore's read and housekeeping commands on a root of many images, against
dockerd 20.10's API on the same root (the daemon started untimed), at two root sizes.

The root is made fast: small images of a few tiny layers each (no layer shared), pushed to the
local registry and pulled by one `emustore pull -f LIST` per size.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scripts.bench.contenders import Sample, timed
from scripts.bench.images import tiny_images
from scripts.bench.report import BigRootResult
from tests.support.dockerd import Dockerd
from tests.support.registry import RegistryServer

LAYERS_PER_IMAGE = 6
API = "/v1.41"


def push_tiny(registry: RegistryServer, count: int) -> list[str]:
    """Push `count` images of LAYERS_PER_IMAGE layers as bench/tiny-<i>:v1; their references."""
    images = tiny_images(count, LAYERS_PER_IMAGE)
    with ThreadPoolExecutor(4) as pool:
        pushed = pool.map(lambda item: item[1].push(registry.host, f"bench/tiny-{item[0]}", "v1"), enumerate(images))
        return [p.reference for p in pushed]


def emustore(*args: str) -> list[str]:
    return [sys.executable, "-m", "emustore", *args]


def pull_list(root: Path, refs: list[str], listing: Path) -> float:
    """`emustore pull -q -f LISTING --root ROOT` for `refs`: seconds."""
    listing.write_text("".join(ref + "\n" for ref in refs))
    return timed(emustore("pull", "-q", "-f", str(listing), "--root", str(root))).seconds


def api_call(daemon: Dockerd, method: str, path: str, **params: str) -> Sample:
    """One Engine API request, timed; a failure is fatal (the root must answer)."""
    start = time.perf_counter()
    response = daemon.api(method, API + path, params=params)
    seconds = time.perf_counter() - start
    if response.status_code >= 400:
        raise RuntimeError(f"dockerd {method} {path}: {response.status_code} {response.text[:300]}")
    return Sample(seconds)


def measure_size(
    result: BigRootResult,
    root: Path,
    refs: list[str],
    daemon_dir: Path,
    runs: int,
    log: Callable[[str], None],
) -> None:
    """Time every command `runs` times on the root holding `refs`; run k removes two images (one
    by each tool) from the end of the list."""
    size = len(refs)
    for run in range(runs):
        probe = refs[run]
        mine, theirs = refs[size - 1 - 2 * run], refs[size - 2 - 2 * run]
        commands = {
            "images": emustore("images", "--root", str(root)),
            "inspect": emustore("inspect", "--root", str(root), probe),
            "rmi": emustore("rmi", "--root", str(root), mine),
            "image prune": emustore("image", "prune", "-f", "--root", str(root)),
            "fsck": emustore("fsck", "--root", str(root)),
            "du": emustore("du", "--root", str(root)),
        }
        for op, argv in commands.items():
            result.samples.setdefault(("emustore", op, size), []).append(timed(argv))
        start = time.perf_counter()
        daemon = Dockerd(root, daemon_dir)
        result.samples.setdefault(("dockerd", "daemon start", size), []).append(Sample(time.perf_counter() - start))
        try:
            calls = {
                "images": ("GET", "/images/json"),
                "inspect": ("GET", f"/images/{probe}/json"),
                "rmi": ("DELETE", f"/images/{theirs}"),
                "image prune": ("POST", "/images/prune"),
                "du": ("GET", "/system/df"),
            }
            for op, (method, path) in calls.items():
                result.samples.setdefault(("dockerd", op, size), []).append(api_call(daemon, method, path))
        finally:
            daemon.stop()
        timings = {op: result.samples[("emustore", op, size)][-1].seconds for op in commands}
        log(f"  bigroot {size} images run {run + 1}/{runs}: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))


def measure(
    registry: RegistryServer, workdir: Path, daemon_dir: Path, sizes: tuple[int, int], runs: int, log: Callable[[str], None]
) -> BigRootResult:
    small, large = sizes
    log(f"bigroot: pushing {large} images of {LAYERS_PER_IMAGE} layers ...")
    refs = push_tiny(registry, large)
    root = workdir / "root"
    result = BigRootResult({}, {})
    for size in (small, large):
        result.setup[size] = pull_list(root, refs[:size], workdir / f"list-{size}")
        result.sizes[size] = len(list((root / "image" / "overlay2" / "layerdb" / "sha256").iterdir()))
        log(f"bigroot: {size} images, {result.sizes[size]} layers, pulled in {result.setup[size]:.1f}s")
        measure_size(result, root, refs[:size], daemon_dir, runs, log)
    return result

