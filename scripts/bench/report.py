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
    lines += [f"Both file systems: {fs}. Wall time in seconds, median (min–max).", ""]
    for r in results:
        names = columns([r.fresh, r.aged])
        lines += [f"`{r.name}`, {r.deleted} files created and deleted before each aged run:", ""]
        lines += table(
            ["contender", "fresh", "aged", "aged ÷ fresh"],
            [
                [LABELS[n], spread(r.fresh.get(n)), spread(r.aged.get(n)), ratio({"a": r.aged.get(n, []), "f": r.fresh.get(n, [])}, "a", "f")]
                for n in names
            ],
        )
        lines.append("")
    return "\n".join(lines).rstrip()


BIGROOT_OPS = ("images", "inspect", "rmi", "image prune", "fsck", "du")


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


def merge(old_page: str, new: dict[str, str], notes: list[str]) -> str:
    """The page with the scenarios of `new` replaced and every other one kept from `old_page`
    (or marked as not measured yet)."""
    kept = sections_of(old_page)
    parts = [TITLE, ""]
    for name in SCENARIOS:
        body = new.get(name) or kept.get(name)
        if body is None:
            body = f"_Not measured yet: `make bench BENCH_ARGS='--only {name}'`._"
        parts += [section(name, body), ""]
    parts += ["## How to read it", ""] + [f"- {note}" for note in notes]
    return "\n".join(parts) + "\n"
