"""Root file systems built from real Debian packages by `mmdebstrap`, cached between runs.

`rootfs(packages)` is a bookworm `--variant=minbase` tarball with `packages` added, built once
(it needs the Debian mirror: a package registry) into the bench cache
(`$EMUSTORE_BENCH_CACHE`, default ~/.cache/emustore/bench/) and reused afterwards without network.
SOURCE_DATE_EPOCH pins the file times. The layers are then computed from the tarballs
(layerdiff.py); /dev's device nodes, which a container runtime provides, are left out as
Debian's own container images do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from scripts.bench.layerdiff import diff_layer

SUITE = "bookworm"
SOURCE_DATE_EPOCH = "1700000000"
BUILD_TIMEOUT = 900


def bench_cache() -> Path:
    configured = os.environ.get("EMUSTORE_BENCH_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "emustore" / "bench"


def keep(name: str) -> bool:
    """Every path but what is inside /dev."""
    return not name.startswith("dev/")


def cache_name(packages: tuple[str, ...]) -> str:
    """`bookworm-minbase` or `bookworm-minbase+python3+python3-numpy`."""
    return "+".join([f"{SUITE}-minbase", *sorted(packages)])


def rootfs(packages: tuple[str, ...] = ()) -> Path:
    """The cached tarball, built first when missing; RuntimeError (one line) when it cannot be."""
    target = bench_cache() / f"{cache_name(packages)}.tar"
    if target.is_file():
        return target
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("mmdebstrap is not installed (`make setup` as root installs it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.tar")
    argv = ["mmdebstrap", "--quiet", "--variant=minbase", SUITE, str(partial)]
    if packages:
        argv.insert(3, "--include=" + ",".join(packages))
    mirror = os.environ.get("EMUSTORE_BENCH_MIRROR")  # default: mmdebstrap's own (deb.debian.org)
    if mirror:
        argv.append(mirror)
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"mmdebstrap did not finish in {BUILD_TIMEOUT}s") from exc
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"mmdebstrap failed ({done.returncode}): {tail}")
    partial.rename(target)
    return target


def layer(packages: tuple[str, ...], below: tuple[str, ...] | None) -> bytes:
    """The layer adding `packages` over the tree of `below` (None: the base layer itself), as an
    uncompressed tar, cached beside the tarballs."""
    full = rootfs(packages)
    base = rootfs(below) if below is not None else None
    name = cache_name(packages) + ("" if below is None else f".over.{cache_name(below)}") + ".layer.tar"
    cached = bench_cache() / name
    if not cached.is_file():
        partial = cached.with_suffix(".partial")
        try:
            diff_layer(base, full, partial, keep)
            partial.rename(cached)
        finally:
            partial.unlink(missing_ok=True)
    return cached.read_bytes()
