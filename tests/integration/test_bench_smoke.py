"""The benchmark's machinery runs end to end on a tiny image (no timing is asserted): emustore
and the floor as contenders, a list of images sharing a base, and the page it renders."""

from __future__ import annotations

from pathlib import Path

from scripts.bench import many, pulls
from scripts.bench.contenders import Emustore, Floor
from scripts.bench.images import BenchImage
from scripts.bench.report import render_many, render_pulls, sections_of, merge
from tests.support.imagefactory import LayerBuilder, busybox_image
from tests.support.registry import RegistryServer


def test_pulls_and_many_run_and_render(registry: RegistryServer, scratch: Path) -> None:
    bench = BenchImage("tiny", "busybox + one file", busybox_image().layer(LayerBuilder().file("f", b"f\n")))
    pushed = pulls.push(bench, registry)
    contenders = [Emustore(scratch), Floor(scratch)]
    result = pulls.measure(pushed, contenders, 1, lambda message: None)
    assert set(result.cold) == {"emustore", "floor"} and set(result.warm) == {"emustore"}
    roots = [p for p in scratch.iterdir() if p.name.startswith("emustore-root-")]
    assert len(roots) == 1 and (roots[0] / "image" / "overlay2" / "repositories.json").is_file()
    floors = [p for p in scratch.iterdir() if p.name.startswith("floor-")]
    assert (floors[0] / "2" / "f").read_bytes() == b"f\n"  # the third layer, unpacked by the floor

    base = busybox_image()
    images = [base.copy().layer(LayerBuilder().file(f"app{i}", b"%d" % i)) for i in range(3)]
    lists = many.push_all(images, registry, [2, 3])
    assert [len(pl.target.refs) for pl in lists] == [2, 3]
    assert [len(pl.target.blobs) for pl in lists] == [4, 5]  # the two base layers once
    measured = many.measure(lists[1], contenders, 1, lambda message: None)
    page = merge("", {"pulls": render_pulls([result], 1, "m"), "many": render_many([measured], "b", 1, "m")}, "")
    assert "| tiny | 3 |" in sections_of(page)["pulls"] and "| 3 | 5 |" in sections_of(page)["many"]
