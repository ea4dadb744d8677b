"""Turning samples into the benchmark page (markdown): one section per scenario, each with the
date and the machine it was measured on, merged into the page so a scenario can be re-run alone."""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
from dataclasses import dataclass, field

from scripts.bench.contenders import Sample
from tests.support.engines import find_engine, missing

MiB = 1 << 20
SCENARIOS = ("pulls", "many", "aged", "bigroot")
TITLE = "# Benchmark: emustore vs the engines of today vs the machine's floor"
ENGINES = ("docker-20.10", "docker-28", "docker-28-containerd", "ctr-2.1")
LABELS = {
    "emustore": "emustore",
    "emustore-containerd": "emustore --store containerd",
    "docker-20.10": "docker 20.10",
    "docker-28": "docker 28",
    "docker-28-containerd": "docker 28 containerd store",
    "ctr-2.1": "ctr 2.1 pull",
    "floor": "floor",
}
Samples = dict[str, list[Sample]]


@dataclass
class ImageResult:
    """Every sample taken for one image, per contender, plus what the image holds."""

    name: str
    description: str
    layers: int
    compressed: int
    uncompressed: int
    cold: Samples = field(default_factory=dict)
    warm: Samples = field(default_factory=dict)


@dataclass
class ManyResult:
    """One list of images pulled at once: how many, the union of their blobs, and the samples."""

    images: int
    blobs: int
    compressed: int
    cold: Samples = field(default_factory=dict)


@dataclass
class AgedResult:
    """One image pulled on a fresh file system and on one that has just had files deleted."""

    name: str
    deleted: int  # files created then deleted before each aged run
    fresh: Samples = field(default_factory=dict)
    aged: Samples = field(default_factory=dict)


@dataclass
class BigRootResult:
    """Command timings on a root of each size; `sizes` maps images to the layers they hold."""

    sizes: dict[int, int]
    setup: dict[int, float]  # seconds emustore took to pull the root up to that size
    samples: dict[tuple[str, str, int], list[Sample]] = field(default_factory=dict)  # (tool, op, images)


def median(samples: list[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def spread(samples: list[Sample] | None) -> str:
    """"median (min–max)" in seconds, or – when nothing was measured."""
    if not samples:
        return "–"
    times = [s.seconds for s in samples]
    return "%.2f (%.2f–%.2f)" % (statistics.median(times), min(times), max(times))


def fine(samples: list[Sample] | None) -> str:
    """The median in milliseconds (for quick commands), or –."""
    return "%.0f ms" % (median(samples) * 1000) if samples else "–"


def peak_rss(samples: list[Sample] | None) -> str:
    values = [s.rss_kib for s in samples or [] if s.rss_kib is not None]
    return "%.0f MB" % (max(values) * 1024 / 1e6) if values else "–"


def ratio(samples: Samples, a: str, b: str) -> str:
    if not samples.get(a) or not samples.get(b):
        return "–"
    return "%.2f" % (median(samples[a]) / median(samples[b]))


def fastest_engine(samples: Samples) -> str | None:
    """The engine (not emustore, not the floor) with the smallest median, if any ran."""
    ran = [name for name in ENGINES if samples.get(name)]
    return min(ran, key=lambda name: median(samples[name])) if ran else None


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def columns(results: list[Samples]) -> list[str]:
    """The contenders that ran in any result, in LABELS' order."""
    return [name for name in LABELS if any(r.get(name) for r in results)]


def machine() -> str:
    """nproc, memory, kernel, python and engine versions, one line."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    engines = []
    for version in ("20.10", "28"):
        found = find_engine(version)
        engines.append(found.versions() if missing(found) is None else f"dockerd {version}: not available")
    return "%d cores, %.1f GiB memory, Linux %s, Python %s, %s, load average %.2f at the start" % (
        os.cpu_count() or 0,
        memory,
        platform.release(),
        platform.python_version(),
        "; ".join(engines),
        os.getloadavg()[0],
    )


def stamp(what: str, machine_line: str) -> list[str]:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [f"Measured {now} by `make bench` ({what}).", f"Machine: {machine_line}.", ""]


def render_pulls(results: list[ImageResult], runs: int, machine_line: str) -> str:
    """Cold pulls (every contender), the ratios the targets are about, warm re-pulls, the images."""
    names = columns([r.cold for r in results])
    lines = ["## One image, cold", ""] + stamp(f"{runs} interleaved cold runs per image and contender", machine_line)
    lines += ["Wall time in seconds, median (min–max).", ""]
    lines += table(
        ["image", "layers", "compressed", "unpacked", *(LABELS[n] for n in names)],
        [
            [r.name, str(r.layers), "%.0f MB" % (r.compressed / 1e6), "%.0f MB" % (r.uncompressed / 1e6)]
            + [spread(r.cold.get(n)) for n in names]
            for r in results
        ],
    )
    lines += ["", "Ratios of medians (below 1: emustore is faster), and emustore's peak memory:", ""]
    rows = []
    for r in results:
        fastest = fastest_engine(r.cold)
        rows.append(
            [
                r.name,
                LABELS[fastest] if fastest else "–",
                ratio(r.cold, "emustore", fastest) if fastest else "–",
                ratio(r.cold, "emustore", "docker-20.10"),
                ratio(r.cold, "emustore", "floor"),
                ratio(r.cold, "emustore-containerd", "emustore"),
                peak_rss(r.cold.get("emustore")),
            ]
        )
    lines += table(
        [
            "image", "fastest engine", "emustore ÷ fastest engine", "emustore ÷ docker 20.10", "emustore ÷ floor",
            "--store containerd ÷ Docker store", "emustore peak memory",
        ],
        rows,
    )
    warm_names = columns([r.warm for r in results])
    lines += ["", "Warm re-pull (the images already there: manifests only, no blob requested):", ""]
    lines += table(["image", *(LABELS[n] for n in warm_names)], [[r.name] + [spread(r.warm.get(n)) for n in warm_names] for r in results])
    lines += ["", "The images:", ""] + [f"- `{r.name}`: {r.description}." for r in results]
    return "\n".join(lines)


def render_many(results: list[ManyResult], described: str, runs: int, machine_line: str) -> str:
    """One row per list length: times, ratios and peak memory (emustore's process tree; each
    daemon's tree for the engines)."""
    names = columns([r.cold for r in results])
    lines = ["## Many images sharing a base, one pull command", ""]
    lines += stamp(f"{runs} interleaved cold runs per list and contender", machine_line)
    lines += [f"Each image: {described}. Wall time in seconds, median (min–max).", ""]
    lines += table(
        ["images", "blobs", "compressed", *(LABELS[n] for n in names), "emustore ÷ docker 20.10", "emustore ÷ docker 28", "emustore ÷ floor"],
        [
            [str(r.images), str(r.blobs), "%.0f MB" % (r.compressed / 1e6)]
            + [spread(r.cold.get(n)) for n in names]
            + [ratio(r.cold, "emustore", "docker-20.10"), ratio(r.cold, "emustore", "docker-28"), ratio(r.cold, "emustore", "floor")]
            for r in results
        ],
    )
    lines += ["", "Peak memory (PSS) over the whole list:", ""]
    memory_names = [n for n in names if n != "floor"]
    lines += table(
        ["images", *(LABELS[n] for n in memory_names)],
        [[str(r.images)] + [peak_rss(r.cold.get(n)) for n in memory_names] for r in results],
    )
    return "\n".join(lines)


def render_aged(results: list[AgedResult], fs: str, runs: int, machine_line: str) -> str:
    """Per image and contender: fresh, aged, and the slowdown."""
    lines = ["## An aged file system: right after a mass deletion", ""]
    lines += stamp(f"{runs} interleaved runs per image, contender and file system", machine_line)
    lines += [f"File systems: {fs}. Wall time in seconds, median (min–max).", ""]
    for r in results:
        names = columns([r.fresh, r.aged])
        lines += [f"`{r.name}`, {r.deleted} files created and deleted inside the contender's root before each aged run:", ""]
        lines += table(
            ["contender", "fresh", "aged", "aged ÷ fresh"],
            [
                [LABELS[n], spread(r.fresh.get(n)), spread(r.aged.get(n)), ratio({"a": r.aged.get(n, []), "f": r.fresh.get(n, [])}, "a", "f")]
                for n in names
            ],
        )
        lines.append("")
    return "\n".join(lines).rstrip()


BIGROOT_OPS = ("images", "inspect", "rmi", "image prune", "fsck", "du", "daemon start")


def render_bigroot(result: BigRootResult, runs: int, machine_line: str) -> str:
    """Per command: emustore and dockerd 20.10's API at each root size, and the growth."""
    small, large = sorted(result.sizes)
    lines = ["## Big roots", ""] + stamp(f"{runs} runs per command and root size", machine_line)
    lines += [
        f"Roots of {small} images ({result.sizes[small]} layers) and {large} images ({result.sizes[large]} "
        f"layers); emustore pulled them in {result.setup[small]:.0f} s and {result.setup[large]:.0f} s (one "
        "`pull -f` each). Median wall time; growth is the large root's median ÷ the small one's "
        f"(the root grew {large / small:.0f}×).",
        "",
    ]
    rows = []
    for op in BIGROOT_OPS:
        row = [op]
        for tool in ("emustore", "dockerd"):
            at_small = result.samples.get((tool, op, small))
            at_large = result.samples.get((tool, op, large))
            growth = "%.1f×" % (median(at_large) / median(at_small)) if at_small and at_large else "–"
            row += [fine(at_small), fine(at_large), growth]
        rows.append(row)
    lines += table(
        [
            "command", f"emustore, {small}", f"emustore, {large}", "growth",
            f"dockerd 20.10 API, {small}", f"dockerd 20.10 API, {large}", "growth",
        ],
        rows,
    )
    return "\n".join(lines)


def section(name: str, body: str) -> str:
    return f"<!-- bench:{name} -->\n{body.rstrip()}\n<!-- /bench:{name} -->"


def sections_of(page: str) -> dict[str, str]:
    """The scenario sections of an existing page (their bodies, markers excluded)."""
    found = re.finditer(r"<!-- bench:([a-z]+) -->\n(.*?)\n<!-- /bench:\1 -->", page, flags=re.S)
    return {match.group(1): match.group(2) for match in found}


def merge(old_page: str, new: dict[str, str], tail: str) -> str:
    """The page with the scenarios of `new` replaced and every other one kept from `old_page`
    (or marked as not measured yet), then `tail` (the text that explains them)."""
    kept = sections_of(old_page)
    parts = [TITLE, ""]
    for name in SCENARIOS:
        body = new.get(name) or kept.get(name)
        if body is None:
            body = f"_Not measured yet: `make bench BENCH_ARGS='--only {name}'`._"
        parts += [section(name, body), ""]
    return "\n".join(parts) + "\n" + tail.strip() + "\n"


def explained() -> str:
    """What follows the tables: how to read them, how to run parts, what aging changes."""
    lines = ["## How to read it", ""] + [f"- {note}" for note in NOTES]
    return "\n".join(lines + ["", RUNNING.strip(), "", AGED_EXPLAINED.strip()])


NOTES = [
    "**emustore**: `python -m emustore pull REF… --root DIR` as one subprocess into a fresh empty root; the time "
    "includes the interpreter's start. Peak memory is the largest sum, sampled every 50 ms, of the proportional "
    "set size (PSS) of emustore and its extraction processes (forks share pages: PSS counts each page once).",
    "**emustore --store containerd**: the same with `--store containerd`; the column appears by itself once "
    "`emustore pull --help` mentions `--store`.",
    "**docker 20.10**, **docker 28**: `/usr/bin/docker pull REF` for each reference in turn against a private "
    "dockerd (Debian 12's 20.10.24; Debian's 28.5.2 with its containerd 2.1.9 from the engine cache, "
    "`make setup`), overlay2, started untimed on an empty data root for each run and stopped by pid after it. "
    "**docker 28 containerd store**: the same daemon with the containerd image store "
    "(`--feature containerd-snapshotter=true`, the flag form of daemon.json's "
    '`"features": {"containerd-snapshotter": true}`; its snapshotter is overlayfs). dockerd 20.10 cannot pull '
    "zstd layers: it pulls the image's gzip twin (same config). An engine's memory is its daemon's process "
    "tree (dockerd and its containerd), idle baseline included, during the pulls.",
    "**ctr 2.1 pull**: `ctr images pull --plain-http --snapshotter overlayfs REF` (fetch, then unpack into "
    "snapshots) against a private containerd 2.1.9 (plugins reaching outside its dirs disabled) started untimed "
    "on an empty root for each run.",
    "**floor**: every layer blob through `curl | gzip -d | tar -x` (or `zstd -d`), all layers at once; no "
    "verification, no tar-split, no metadata: what the machine needs just to move the bytes. For a list of "
    "images: the union of their blobs, each once.",
    "Runs are interleaved (each contender in turn, then again) so that load on the machine hits all alike; all "
    "read the same local `docker-registry` over loopback; the disks are synced before each timed run. Every "
    "contender writes to the same fresh ext4 (mkfs defaults with a journal, twice the inodes), loop-mounted for "
    "each image (or list); nothing is deleted there until the end (see `aged`).",
    "**Images**: `debian-minbase` is a real Debian root file system: `mmdebstrap --variant=minbase bookworm` "
    "(Debian packages from the Debian mirror, file times pinned by SOURCE_DATE_EPOCH), its /dev device nodes "
    "left out as Debian's container images do. `debian-python` adds one layer: the difference between that tree "
    "and `mmdebstrap --include=python3,python3-numpy`'s (scripts/bench/layerdiff.py: new or changed entries "
    "with their parent directories, whiteouts for removed paths; installing these packages removes none). Both "
    "trees are built once into ~/.cache/emustore/bench/ (`$EMUSTORE_BENCH_CACHE`) and reused without network; "
    "when mmdebstrap cannot build them the bench says so and skips those images (the `many` scenario then uses "
    "`mixed`'s layers as its base). `manylayers-50` is busybox and 48 layers of files from /usr, each removing "
    "a file of the layer before. The others are built from files of this machine, deterministically.",
    "**Many images**: ten images over one base (the Debian minbase), each with an application layer of its own "
    "(up to 4 MiB of libraries) and a config file; lists of 2, 5 and 10 of them. emustore pulls a list in one "
    "process (`emustore pull REF…`: a shared blob is downloaded once); the engines get one `docker pull` after "
    "another on one daemon, as people script it. Memory should be flat in the length of the list.",
    "**Aged file system**: for each image a fresh file system shared by every contender's fresh runs, and for "
    "each aged run a file system of its own, all journal-less like this machine's root (`--aged-journal`: with "
    "a journal). Before an aged run (untimed, once the contender's root or daemon is ready) 100,000 files of "
    "2 KiB are created in 500 directories inside that root, synced, deleted and synced again, as `rmi` and "
    "`prune` do inside a long-lived /var/lib/docker. See \"What an aged file system changes\" below.",
    "**Big roots**: images of 6 tiny layers each (no layer shared), pulled by one `emustore pull -q -f LIST` into "
    "one root, first 50 images (300 layers), then 500 (3000 layers). Each command is timed on that root: "
    "emustore's as a process (interpreter start included; it reads the root from disk each time), dockerd "
    "20.10's as one Engine API request on its socket (`GET /images/json`, `GET /images/REF/json`, "
    "`DELETE /images/REF`, `POST /images/prune`, `GET /system/df`) to a daemon started on the same root "
    "(untimed; shown as `daemon start`: that is where dockerd reads the root, once, into memory). `rmi` removes "
    "one image with its 6 layers (a different one for each tool and run); `image prune` finds nothing dangling "
    "(the scan); `fsck` has no dockerd counterpart.",
]

RUNNING = """
## Running it in pieces

`make bench` runs every scenario (about 20 minutes on 2 cores) and rewrites this page. `BENCH_ARGS`
picks parts; a run replaces only the sections it measured, each stamped with its own date and machine:

| `BENCH_ARGS` | what |
|---|---|
| `--only pulls many aged bigroot` | these scenarios (any of them) |
| `--runs N` | N runs per measurement in every scenario (defaults: pulls 3, many 2, aged 2, bigroot 3) |
| `--images NAME…` | pulls: only these images (`smallfiles`, `bigfiles-128`, `bigfiles-384`, `mixed`, `mixed-zstd`, `debian-minbase`, `debian-python`, `manylayers-50`) |
| `--contenders NAME…` | only these (`emustore`, `emustore-containerd`, `docker-20.10`, `docker-28`, `docker-28-containerd`, `ctr-2.1`, `floor`) |
| `--many-sizes N…` | many: list lengths (default 2 5 10) |
| `--aged-images NAME…`, `--aged-deleted N`, `--aged-journal` | aged: images (default `debian-minbase`), files deleted before each run (100,000), file systems with a journal |
| `--bigroot-sizes SMALL LARGE` | bigroot: images in the two roots (default 50 500) |
| `--quick` | small images and roots, one run, nothing written: a check that it all works (about 4 minutes) |
| `--output FILE` | update FILE instead of this page |

Needs root (loop-mounted scratch file systems, daemons), `make setup` (Debian packages including
mmdebstrap, and the Docker 28 engine in its cache), and the Debian mirror once for the Debian images.
No timing is asserted anywhere: the bench prints and records.
"""

AGED_EXPLAINED = """
## What an aged file system changes

ext4 without a journal (this machine's root file system) does not hand out an inode freed in the
last minute (five, while its inode table block is dirty) if that block is still in memory: the
allocator passes over each such inode in turn before it settles, so every file created where many
were just freed costs a walk over them. ext4 makes this check only when it has no journal.

What was measured while building this scenario (2 cores shared with other jobs, single runs, so
indicative only; the table above is the figure of record), `debian-minbase` (8,700 entries), 100,000
files deleted:

- Where the deletion happened decides it. Deleting (empty) files in a directory of their own beside
  the contenders' roots slowed no one (fresh → aged: emustore 0.89 → 0.86 s, dockerd 20.10 2.29 →
  2.40 s, `ctr` 1.50 → 1.42 s, the floor 1.24 → 1.26 s). Deleting them inside each contender's root
  (this scenario) slowed everyone:
  emustore 1.3 → 5.3 s, dockerd 20.10 2.8 → 8.3 s, dockerd 28 3.7 → 8.1 s, dockerd 28 with the
  containerd store 2.6 → 8.4 s, `ctr` 2.3 → 8.1 s, and the floor's plain `tar -x` 1.5 → 6.8 s.
- With a journal (`--aged-journal`) the same deletion inside the roots changed nothing: emustore
  1.42 → 1.17 s, dockerd 20.10 2.83 → 3.06 s, dockerd 28 3.15 → 3.09 s, `ctr` 1.55 → 1.55 s, the
  floor 1.20 → 1.20 s.
- `tar -x` of the same layer took 0.24 s on a fresh file system, 7.4 s into a directory made right
  after the deletion, and 0.27 s into one made under a directory that existed before it: new
  directories go to block groups with many free inodes, which a mass deletion has just made.
- Repeated deletions on one file system add up: in a first version of this scenario, where every
  contender aged the same file system in turn, the later contenders were 2–7× slower and the first
  one not at all, whoever it was. That is why each aged run now gets a file system of its own.

What emustore does differently: nothing. It creates its directories and files with the same system
calls as `tar` and the engines and pays about the same extra seconds (4–6 s here for 8,700 entries);
its ratio is the larger only because its fresh time is the smaller. Nothing in a pull can avoid it
short of writing into block groups away from the freed inodes; a journal (as most Docker hosts' ext4
has) removes the check altogether, as measured above.
"""
