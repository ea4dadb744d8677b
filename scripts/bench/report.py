"""Turning samples into the benchmark table (markdown), with the date and the machine."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field

from scripts.bench.contenders import Sample

MiB = 1 << 20


@dataclass
class ImageResult:
    """Every sample taken for one image, per contender, plus what the image holds."""

    name: str
    description: str
    layers: int
    compressed: int
    uncompressed: int
    cold: dict[str, list[Sample]] = field(default_factory=dict)
    warm: dict[str, list[Sample]] = field(default_factory=dict)


def median(samples: list[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def spread(samples: list[Sample]) -> str:
    """"median (min–max)" in seconds."""
    times = [s.seconds for s in samples]
    return "%.2f (%.2f–%.2f)" % (statistics.median(times), min(times), max(times))


def peak_rss(samples: list[Sample]) -> str:
    values = [s.rss_kib for s in samples if s.rss_kib is not None]
    return "%.0f MB" % (max(values) * 1024 / 1e6) if values else "–"


def ratio(result: ImageResult, a: str, b: str) -> str:
    if not result.cold.get(a) or not result.cold.get(b):
        return "–"
    return "%.2f" % (median(result.cold[a]) / median(result.cold[b]))


def machine() -> str:
    """nproc, memory, kernel, python and dockerd versions, one line."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    try:
        dockerd = subprocess.run(["/usr/sbin/dockerd", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        dockerd = "dockerd: not installed"
    return "%d cores, %.1f GiB memory, Linux %s, Python %s, %s, load average %.2f at the start" % (
        os.cpu_count() or 0,
        memory,
        platform.release(),
        platform.python_version(),
        dockerd,
        os.getloadavg()[0],
    )


def render(results: list[ImageResult], runs: int, machine_line: str, notes: list[str]) -> str:
    """The markdown page: header, cold table, warm table, how to read it."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark: `emustore pull` vs `docker pull` vs the machine's floor",
        "",
        f"Measured {now} by `make bench` ({runs} interleaved cold runs per image).",
        f"Machine: {machine_line}.",
        "",
        "Wall time in seconds, median (min–max). Ratios are of medians; below 1 means emustore is faster.",
        "",
        "| image | layers | compressed | unpacked | emustore | docker pull | floor | emustore ÷ docker | emustore ÷ floor | emustore peak memory |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            "| %s | %d | %.0f MB | %.0f MB | %s | %s | %s | %s | %s | %s |"
            % (
                r.name,
                r.layers,
                r.compressed / 1e6,
                r.uncompressed / 1e6,
                spread(r.cold["emustore"]),
                spread(r.cold["docker"]),
                spread(r.cold["floor"]),
                ratio(r, "emustore", "docker"),
                ratio(r, "emustore", "floor"),
                peak_rss(r.cold["emustore"]),
            )
        )
    lines += [
        "",
        "Warm re-pull (the image already in the root: manifest only, no blob requested):",
        "",
        "| image | emustore | docker pull | emustore peak memory |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            "| %s | %s | %s | %s |"
            % (r.name, spread(r.warm["emustore"]), spread(r.warm["docker"]), peak_rss(r.warm["emustore"]))
        )
    lines += ["", "## The images", ""]
    lines += [f"- `{r.name}`: {r.description}." for r in results]
    lines += ["", "## How to read it", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


HOW_TO_READ = [
    "**emustore**: `python -m emustore pull REF --root DIR` as a subprocess into a fresh empty root; the "
    "time includes the interpreter's start. Peak memory is the largest sum, sampled every 50 ms, of the "
    "proportional set size (PSS) of emustore and its extraction processes (forks share pages: PSS counts "
    "each page once).",
    "**docker pull**: `/usr/bin/docker pull REF` against a private dockerd 20.10 (overlay2), started "
    "(untimed) on an empty data root for each run, so every layer is downloaded and extracted.",
    "**floor**: every layer blob through `curl | gzip -d | tar -x` (or `zstd -d`), all layers at once; "
    "no verification, no tar-split, no metadata: what the machine needs just to move the bytes.",
    "Runs are interleaved (emustore, docker, floor, emustore, ...) so that load on the machine hits all "
    "three alike; all three read the same local `docker-registry` over loopback; the disks are synced "
    "before each timed run.",
    "All three write to a fresh ext4 (mkfs defaults with a journal, twice the inodes) loop-mounted for each image; nothing "
    "is deleted there until the end (see scripts/bench/scratch.py: on this machine's journal-less root "
    "file system, creating files right after deleting many is up to ten times slower).",
    "The two `bigfiles` sizes show the memory: peak memory stays flat while the image triples.",
]
