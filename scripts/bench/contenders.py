"""The ways to pull images that the benchmark times, each from a cold start.

Every contender has an untimed `prepare()` (a fresh empty root, or a fresh daemon on one),
a timed `run(target)` returning a Sample, `cleanup()` after each run and `stop()` at the end. Wall time is taken around the command;
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

from tests.support.containerd import Containerd
from tests.support.dockerd import DOCKER_CLI, Dockerd, unmount_under
from tests.support.engines import Engine, find_engine

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


@dataclass(frozen=True)
class Target:
    """What one timed pull fetches: `refs` in turn, `gzip_refs` the same images with zstd layers
    shipped as gzip (for dockerd 20.10), `blobs` the union of their layer blobs as (URL, the
    floor's shell decompressor)."""

    refs: tuple[str, ...]
    gzip_refs: tuple[str, ...]
    blobs: tuple[tuple[str, str], ...]


def timed_sequence(argvs: list[list[str]], *, env: dict[str, str] | None = None, watch: int | None = None) -> Sample:
    """Run the commands one after another (as a user pulls a list), timed as a whole; with `watch`,
    the peak PSS of that process tree (a daemon's) over the whole sequence."""
    sampler = _PeakSampler(watch) if watch is not None else None
    start = time.perf_counter()
    try:
        for argv in argvs:
            done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    finally:
        seconds = time.perf_counter() - start
        peak = sampler.stop() if sampler is not None else None
    return Sample(seconds, peak)


def emustore_has_containerd_store() -> bool:
    """True once `emustore pull` has `--store` (the containerd store is merged)."""
    done = subprocess.run([sys.executable, "-m", "emustore", "pull", "--help"], capture_output=True, text=True)
    return "--store" in done.stdout


class Emustore:
    """`emustore pull REF… --root DIR` as one subprocess (the CLI a user runs), into a fresh root;
    `store="containerd"` adds `--store containerd`."""

    def __init__(self, workdir: Path, concurrency: int | None = None, store: str | None = None) -> None:
        self.workdir = workdir
        self.concurrency = concurrency
        self.store = store
        self.name = "emustore" if store is None else f"emustore-{store}"
        self.root: Path | None = None

    def argv(self, refs: tuple[str, ...]) -> list[str]:
        argv = [sys.executable, "-m", "emustore", "pull", *refs, "--root", str(self.root)]
        if self.store is not None:
            argv += ["--store", self.store]
        if self.concurrency is not None:
            argv += ["--concurrency", str(self.concurrency)]
        return argv

    def prepare(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="emustore-root-", dir=self.workdir))

    def home(self) -> Path:
        """The prepared root: where this run's files go."""
        assert self.root is not None, "prepare() first"
        return self.root

    def run(self, target: Target) -> Sample:
        """Pull into the prepared root (run again for a warm pull: the root has the images then)."""
        return timed(self.argv(target.refs), rss=True)

    def cleanup(self) -> None:
        self.root = None  # kept: removing it now would slow the next run's file creation

    def stop(self) -> None:
        """Nothing runs between pulls."""


@dataclass(frozen=True)
class _FlaggedEngine(Engine):
    """An engine with extra daemon flags (the containerd image store)."""

    extra: tuple[str, ...] = ()

    @property
    def flags(self) -> tuple[str, ...]:
        return super().flags + self.extra


def engine_with(version: str, containerd_store: bool) -> Engine:
    """Engine `version`, with the containerd image store turned on when asked."""
    found = find_engine(version)
    if not containerd_store:
        return found
    # the last --storage-driver wins: the containerd store's snapshotter is overlayfs, not overlay2
    store = ("--feature", "containerd-snapshotter=true", "--storage-driver", "overlayfs")
    return _FlaggedEngine(found.version, found.dockerd, found.path_dir, found.versions_file, store)


class Docker:
    """`/usr/bin/docker pull REF` for each reference in turn against a private dockerd of `version`,
    started (untimed) on an empty data root for each run and stopped (by pid) after it. Memory is
    the daemon's process tree (dockerd and its containerd) during the pulls."""

    def __init__(self, workdir: Path, version: str = "20.10", containerd_store: bool = False) -> None:
        self.workdir = workdir
        self.engine = engine_with(version, containerd_store)
        self.name = f"docker-{version}" + ("-containerd" if containerd_store else "")
        self.daemon_dir = Path(tempfile.mkdtemp(prefix="bk", dir="/tmp"))  # short: unix socket paths
        self.daemon: Dockerd | None = None

    def prepare(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="dockerd-root-", dir=self.workdir))
        self.daemon = Dockerd(root, self.daemon_dir, engine=self.engine)

    def home(self) -> Path:
        """The running daemon's data root."""
        assert self.daemon is not None, "prepare() first"
        return self.daemon.data_root

    def run(self, target: Target) -> Sample:
        """Pull with the running daemon (run again for a warm pull: the daemon has the images then)."""
        assert self.daemon is not None, "prepare() first"
        refs = target.gzip_refs if self.engine.version == "20.10" else target.refs
        socket = f"unix://{self.daemon.socket}"
        argvs = [[str(DOCKER_CLI), "-H", socket, "pull", ref] for ref in refs]
        env = {**os.environ, "DOCKER_CONFIG": str(self.daemon.cli_config)}
        return timed_sequence(argvs, env=env, watch=self.daemon.process.pid)

    def cleanup(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def stop(self) -> None:
        self.cleanup()
        shutil.rmtree(self.daemon_dir, ignore_errors=True)


class Ctr:
    """`ctr images pull --plain-http --snapshotter overlayfs REF` (fetch and unpack) for each
    reference in turn against a private containerd `version`, started (untimed) on an empty root
    for each run and stopped (by pid) after it."""

    def __init__(self, workdir: Path, version: str = "2.1") -> None:
        self.workdir = workdir
        self.version = version
        self.name = f"ctr-{version}"
        self.daemon: Containerd | None = None

    def prepare(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="containerd-root-", dir=self.workdir))
        self.daemon = Containerd(self.version, root).start()

    def home(self) -> Path:
        """The running daemon's root."""
        assert self.daemon is not None, "prepare() first"
        return self.daemon.root

    def run(self, target: Target) -> Sample:
        assert self.daemon is not None and self.daemon.process is not None, "prepare() first"
        base = [str(self.daemon.ctr_binary), "-a", str(self.daemon.socket), "images", "pull"]
        argvs = [[*base, "--plain-http", "--snapshotter", "overlayfs", ref] for ref in target.refs]
        return timed_sequence(argvs, watch=self.daemon.process.pid)

    def cleanup(self) -> None:
        if self.daemon is not None:
            self.daemon.cleanup()  # stops it by pid; its root stays (see Emustore.cleanup)
            unmount_under(self.daemon.root)
            self.daemon = None

    def stop(self) -> None:
        self.cleanup()


class Floor:
    """The machine's floor: every blob through `curl | gzip -d | tar -x`, all layers at once."""

    name = "floor"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.dest: Path | None = None

    def prepare(self) -> None:
        self.dest = Path(tempfile.mkdtemp(prefix="floor-", dir=self.workdir))

    def home(self) -> Path:
        """Where this run's layers are unpacked."""
        assert self.dest is not None, "prepare() first"
        return self.dest

    def script(self, target: Target) -> str:
        assert self.dest is not None, "prepare() first"
        lines = ["set -u", "pids=()"]
        for i, (url, decompress) in enumerate(target.blobs):
            destination = self.dest / str(i)
            lines.append(
                f"mkdir -p {destination} && (set -o pipefail; curl -sSf {url} | {decompress} | "
                f"tar -x -C {destination}) & pids+=($!)"
            )
        lines.append('for p in "${pids[@]}"; do wait "$p" || exit 1; done')
        return "\n".join(lines)

    def run(self, target: Target) -> Sample:
        return timed(["bash", "-c", self.script(target)], rss=True)

    def cleanup(self) -> None:
        self.dest = None  # kept, as Emustore's roots are

    def stop(self) -> None:
        """Nothing runs between pulls."""


Contender = Emustore | Docker | Ctr | Floor
ENGINE_CONTENDERS = ("docker-20.10", "docker-28", "docker-28-containerd", "ctr-2.1")


def contenders(workdir: Path, concurrency: int | None, names: tuple[str, ...] | None = None) -> list[Contender]:
    """Every contender that can run here, in run order (emustore first, the floor last), or those
    of `names`. `--store containerd` joins once `emustore pull` has it."""
    every: list[Contender] = [Emustore(workdir, concurrency)]
    if emustore_has_containerd_store():
        every.append(Emustore(workdir, concurrency, store="containerd"))
    every += [
        Docker(workdir, "20.10"),
        Docker(workdir, "28"),
        Docker(workdir, "28", containerd_store=True),
        Ctr(workdir, "2.1"),
        Floor(workdir),
    ]
    chosen = [c for c in every if names is None or c.name in names]
    for contender in every:
        if contender not in chosen:
            contender.stop()
    return chosen
