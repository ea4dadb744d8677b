"""The benchmark page: tables from samples, and sections merged so scenarios can run apart."""

from __future__ import annotations

from pathlib import Path

from scripts.bench.contenders import Sample, Target
from scripts.bench.images import split
from scripts.bench.many import union
from scripts.bench.report import (
    AgedResult,
    BigRootResult,
    ImageResult,
    ManyResult,
    fastest_engine,
    merge,
    render_aged,
    render_bigroot,
    render_many,
    render_pulls,
    sections_of,
)
from scripts.bench.contenders import Floor


def s(*seconds: float, rss: int | None = None) -> list[Sample]:
    return [Sample(x, rss) for x in seconds]


def row(page: str, first: str) -> list[str]:
    """The cells of the first table row starting with `first`."""
    for line in page.splitlines():
        if line.startswith(f"| {first} |"):
            return [cell.strip() for cell in line.strip("|").split("|")]
    raise AssertionError(f"no row {first!r} in:\n{page}")


def test_fastest_engine_ignores_emustore_and_the_floor() -> None:
    samples = {"emustore": s(0.1), "floor": s(0.05), "docker-20.10": s(3, 4), "ctr-2.1": s(2, 2.5)}
    assert fastest_engine(samples) == "ctr-2.1"
    assert fastest_engine({"emustore": s(1)}) is None


def test_pulls_tables_give_every_contender_and_the_target_ratios() -> None:
    result = ImageResult("img", "an image", 3, 2_000_000, 5_000_000)
    result.cold = {
        "emustore": s(1.0, 1.2, 0.8, rss=51200),
        "docker-20.10": s(4.0),
        "docker-28-containerd": s(2.0),
        "floor": s(0.5),
    }
    result.warm = {"emustore": s(0.2), "docker-20.10": s(0.05)}
    page = render_pulls([result], 3, "test machine")
    assert row(page, "img")[:8] == [
        "img", "3", "2 MB", "5 MB", "1.00 (0.80–1.20)", "4.00 (4.00–4.00)", "2.00 (2.00–2.00)", "0.50 (0.50–0.50)"
    ]
    ratios = [line for line in page.splitlines() if line.startswith("| img | docker 28 containerd store |")]
    assert ratios == ["| img | docker 28 containerd store | 0.50 | 0.25 | 2.00 | – | 52 MB |"]
    assert "Machine: test machine." in page


def test_many_table_has_ratios_and_memory_per_list_length() -> None:
    results = [
        ManyResult(n, n + 1, 10_000_000, {"emustore": s(1.0 * n, rss=40960), "docker-20.10": s(2.5 * n), "floor": s(0.5 * n)})
        for n in (2, 10)
    ]
    page = render_many(results, "a base", 1, "m")
    assert row(page, "10")[-3:] == ["0.40", "–", "2.00"]
    assert "| 10 | 42 MB | – |" in page


def test_aged_table_gives_the_slowdown() -> None:
    result = AgedResult("img", 1000, fresh={"emustore": s(1.0), "ctr-2.1": s(2.0)}, aged={"emustore": s(1.5), "ctr-2.1": s(8.0)})
    page = render_aged([result], "ext4", 1, "m")
    assert row(page, "emustore")[-1] == "1.50"
    assert row(page, "ctr 2.1 pull")[-1] == "4.00"


def test_bigroot_table_gives_growth_and_dashes_for_what_dockerd_lacks() -> None:
    result = BigRootResult({50: 300, 500: 3000}, {50: 3.0, 500: 30.0})
    result.samples = {
        ("emustore", "images", 50): s(0.1),
        ("emustore", "images", 500): s(0.3),
        ("dockerd", "images", 50): s(0.01),
        ("dockerd", "images", 500): s(0.05),
        ("emustore", "fsck", 50): s(0.2),
    }
    page = render_bigroot(result, 1, "m")
    assert row(page, "images") == ["images", "100 ms", "300 ms", "3.0×", "10 ms", "50 ms", "5.0×"]
    assert row(page, "fsck") == ["fsck", "200 ms", "–", "–", "–", "–", "–"]


def test_merge_replaces_only_the_scenarios_run() -> None:
    first = merge("", {"pulls": "PULLS v1", "many": "MANY v1"}, "## Tail\n\ntext")
    assert sections_of(first) == {
        "pulls": "PULLS v1",
        "many": "MANY v1",
        "aged": "_Not measured yet: `make bench BENCH_ARGS='--only aged'`._",
        "bigroot": "_Not measured yet: `make bench BENCH_ARGS='--only bigroot'`._",
    }
    second = merge(first, {"many": "MANY v2\n\nwith lines"}, "## Tail\n\ntext")
    assert sections_of(second)["pulls"] == "PULLS v1"
    assert sections_of(second)["many"] == "MANY v2\n\nwith lines"
    assert second.endswith("<!-- /bench:bigroot -->\n\n## Tail\n\ntext\n")


def test_split_and_union_build_the_lists() -> None:
    parts = split([(str(i), Path(str(i))) for i in range(10)], 3)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert [name for part in parts for name, _ in part] == [str(i) for i in range(10)]
    blobs = [("http://r/v2/a/blobs/sha256:1", "gzip -dc"), ("http://r/v2/b/blobs/sha256:1", "gzip -dc"), ("http://r/v2/b/blobs/sha256:2", "cat")]
    assert union(blobs) == (blobs[0], blobs[2])


def test_floor_script_fetches_every_blob_at_once(tmp_path: Path) -> None:
    floor = Floor(tmp_path)
    floor.prepare()
    script = floor.script(Target(("r/a:v1",), ("r/a:v1",), (("http://r/x", "gzip -dc"), ("http://r/y", "zstd -dcq"))))
    assert script.count("curl -sSf") == 2 and "zstd -dcq" in script and script.count("& pids+=") == 2
