"""The three ways to pull an image that the benchmark times, each from a cold start.

Every contender has an untimed `prepare()` (a fresh empty root, or a fresh dockerd on one),
a timed `run()` returning a Sample, and `cleanup()`. Wall time is taken around the command;
peak memory is sampled over the command's whole process tree.
Nothing is deleted between runs (see scratch.py): every root stays on the scratch file system,
which is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.dockerd import DOCKER_CLI, Dockerd
from tests.support.imagefactory import PushedImage

SAMPLE_EVERY = 0.05  # seconds between two memory samples of the process tree (each reads smaps_rollup)


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_kib: int | None = None  # peak memory of the whole process tree (PSS sum), when measured


def timed(argv: list[str], *, env: dict[str, str] | None = None, rss: bool = False) -> Sample:
    """Run `argv` (sampling its process tree's memory when `rss`), fail loudly on a non-zero exit.
    The time is taken when the process ends; the sampling runs beside it, in a thread."""
    with tempfile.TemporaryFile(mode="w+") as errors:  # a file: a chatty command never blocks on it
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors, env=env, text=True)
        sampler = _PeakSampler(process.pid) if rss else None
        process.wait()
        seconds = time.perf_counter() - start
        peak = sampler.stop() if sampler is not None else None
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}: {errors.read().strip()[-2000:]}")
    return Sample(seconds, peak)


class _PeakSampler:
    """The largest sum over a process and its descendants of their proportional set size
    (forked children share pages with their parent: PSS counts each page once), in KiB."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._done = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, sum(_pss_kib(pid) for pid in _tree(self._pid)))
            self._done.wait(SAMPLE_EVERY)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def _tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                pending += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return pids


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class Emustore:
    """`emustore pull REF --root DIR` as a subprocess (the CLI a user runs), into a fresh root."""

    name = "emustore"

    def __init__(self, workdir: Path, concurrency: int | None = None) -> None:
        self.workdir = workdir
        self.concurrency = concurrency
        self.root: Path | None = None

    def _argv(self, ref: str) -> list[str]:
        argv = [sys.executable, "-m", "emustore", "pull", ref, "--root", str(self.root)]
        if self.concurrency is not None:
            argv += ["--concurrency", str(self.concurrency)]
        return argv

    def prepare(self, image: PushedImage) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="emustore-root-", dir=self.workdir))

    def run(self, image: PushedImage) -> Sample:
        """Pull into the prepared root (run again for a warm pull: the root has the image then)."""
        return timed(self._argv(image.reference), rss=True)

    def cleanup(self) -> None:
        self.root = None  # kept: removing it now would slow the next run's file creation


class Docker:
    """`/usr/bin/docker pull REF` against a private dockerd 20.10, started on an empty data root
    for each run (untimed) and stopped after it."""

    name = "docker"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.daemon_dir = Path(tempfile.mkdtemp(prefix="bk", dir="/tmp"))  # short: unix socket paths
        self.daemon: Dockerd | None = None

    def prepare(self, image: PushedImage) -> None:
        root = Path(tempfile.mkdtemp(prefix="dockerd-root-", dir=self.workdir))
        self.daemon = Dockerd(root, self.daemon_dir)

    def run(self, image: PushedImage) -> Sample:
        """Pull with the running daemon (run again for a warm pull: the daemon has the image then)."""
        assert self.daemon is not None, "prepare() first"
        argv = [str(DOCKER_CLI), "-H", f"unix://{self.daemon.socket}", "pull", image.reference]
        return timed(argv, env={**os.environ, "DOCKER_CONFIG": str(self.daemon.cli_config)})

    def cleanup(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def stop(self) -> None:
        self.cleanup()
        shutil.rmtree(self.daemon_dir, ignore_errors=True)


class Floor:
    """The machine's floor: every blob through `curl | gzip -d | tar -x`, all layers at once."""

    name = "floor"

    def __init__(self, workdir: Path, registry_url: str) -> None:
        self.workdir = workdir
        self.registry_url = registry_url
        self.dest: Path | None = None

    def prepare(self, image: PushedImage) -> None:
        self.dest = Path(tempfile.mkdtemp(prefix="floor-", dir=self.workdir))

    def script(self, image: PushedImage, decompressors: list[str]) -> str:
        repository = image.repository.split("/", 1)[1]
        lines = ["set -u", "pids=()"]
        for i, (digest, decompress) in enumerate(zip(image.layer_digests, decompressors)):
            target = self.dest / str(i)  # type: ignore[operator]
            url = f"{self.registry_url}/v2/{repository}/blobs/{digest}"
            lines.append(
                f"mkdir -p {target} && (set -o pipefail; curl -sSf {url} | {decompress} | "
                f"tar -x -C {target}) & pids+=($!)"
            )
        lines.append('for p in "${pids[@]}"; do wait "$p" || exit 1; done')
        return "\n".join(lines)

    def run(self, image: PushedImage, decompressors: list[str]) -> Sample:
        """`decompressors`: one shell filter per layer (e.g. `gzip -dc`)."""
        return timed(["bash", "-c", self.script(image, decompressors)], rss=True)

    def cleanup(self) -> None:
        self.dest = None  # kept, as Emustore's roots are
