"""Concurrent pulls into one root: 8 processes at once, overlapping images, 20 rounds.

Per round, into a fresh root: images sharing a busybox base, one of them pulled twice at once,
one by digest, and a tag that moves from one image to another while the pulls run. Afterwards
fsck finds nothing (no leftovers either), every reference has the right image id, each layer
exists once (one layerdb entry per chain id, one overlay2 dir per layer). At the end a real
dockerd adopts the last root and lists every image; while it runs, a pull is refused.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from emustore.stores.docker.layerdb import chain_ids

from tests.support.consistency import check_root
from tests.support.faults import pull_process
from tests.support.figures import record
from tests.support.imagefactory import ImageBuilder, LayerBuilder, PushedImage, busybox_image
from tests.support.pushclient import PushClient
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.registry
ROUNDS = 20
PROCESSES = 8


@pytest.fixture(scope="module")
def builders() -> dict[str, ImageBuilder]:
    base = busybox_image()
    a = base.copy().layer(LayerBuilder().dir("a/").file("a/f", b"a\n" * 1000), created_by="a")
    b = base.copy().layer(LayerBuilder().dir("b/").file("b/f", b"b\n" * 1000), created_by="b")
    c = a.copy().layer(LayerBuilder().dir("c/").file("c/f", b"c\n" * 1000), created_by="c")
    return {"base": base, "a": a, "b": b, "c": c}


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer, builders: dict[str, ImageBuilder]) -> dict[str, PushedImage]:
    images = {name: builder.push(registry.host, f"conc/{name}", "v1") for name, builder in builders.items()}
    images["moving"] = builders["a"].push(registry.host, "conc/moving", "v1")
    return images


def _move_tag(registry: RegistryServer, builder: ImageBuilder) -> None:
    with PushClient(registry.host) as client:
        builder.push_blobs_and_manifest(client, "conc/moving", "v1")


def _move_when_one_is_done(procs: list[subprocess.Popen[str]], registry: RegistryServer, builder: ImageBuilder) -> None:
    """Move the tag while the others still run: once the first pull has finished."""
    while all(proc.poll() is None for proc in procs):
        time.sleep(0.01)
    _move_tag(registry, builder)


def _expected_chains(images: dict[str, PushedImage]) -> set[str]:
    return {chain for image in images.values() for chain in chain_ids(list(image.diff_ids))}


def test_eight_concurrent_pulls_twenty_rounds(
    pushed: dict[str, PushedImage], builders: dict[str, ImageBuilder], registry: RegistryServer,
    tmp_path: Path, dockerd_factory,
) -> None:
    rng = random.Random(3)
    refs = [
        pushed["a"].reference, pushed["b"].reference, pushed["c"].reference, pushed["a"].reference,
        pushed["base"].reference, pushed["c"].digest_reference, pushed["moving"].reference, pushed["b"].reference,
    ]
    assert len(refs) == PROCESSES
    ids = {name: image.image_id for name, image in pushed.items()}
    moved_to: Counter[str] = Counter()
    figures = Counter(rounds=0, pulls=0, failed_pulls=0, inconsistent_roots=0, duplicate_layers=0, wrong_ids=0)
    root = tmp_path
    for round_no in range(ROUNDS):
        _move_tag(registry, builders["a"])
        root = tmp_path / f"round-{round_no}"
        order = refs[:]
        rng.shuffle(order)
        procs = [pull_process(ref, str(root), "-q") for ref in order]
        mover = threading.Thread(target=_move_when_one_is_done, args=(procs, registry, builders["b"]))
        mover.start()
        outputs = [proc.communicate(timeout=300) for proc in procs]
        mover.join()
        figures["rounds"] += 1
        figures["pulls"] += len(procs)
        failed = [(ref, err) for ref, proc, (_, err) in zip(order, procs, outputs) if proc.returncode != 0]
        figures["failed_pulls"] += len(failed)
        assert not failed, failed
        report = check_root(root)
        figures["inconsistent_roots"] += 0 if report.consistent and not report.leftovers else 1
        assert report.consistent and not report.leftovers, (report.problems, report.leftovers)
        for name in ("a", "b", "c", "base"):
            key = f"{pushed[name].repository}:v1"
            figures["wrong_ids"] += report.images.get(key) != ids[name]
        digest_key = f"{pushed['c'].repository}@{pushed['c'].digest}"
        figures["wrong_ids"] += report.images.get(digest_key) != ids["c"]
        moving = report.images.get(f"{registry.host}/conc/moving:v1")
        assert moving in (ids["a"], ids["b"]), moving
        moved_to["a" if moving == ids["a"] else "b"] += 1
        layers = list((root / "image/overlay2/layerdb/sha256").iterdir())
        overlay_dirs = [p for p in (root / "overlay2").iterdir() if p.name != "l"]
        expected = len(_expected_chains(pushed))
        figures["duplicate_layers"] += max(0, len(overlay_dirs) - expected) + max(0, len(layers) - expected)
        assert len(layers) == len(overlay_dirs) == expected
        assert figures["wrong_ids"] == 0
    record(
        "concurrent pulls",
        **figures,
        files_outside_root=len([p for p in tmp_path.iterdir() if not p.name.startswith("round-")]),
        moving_tag_ended_on_a=moved_to["a"],
        moving_tag_ended_on_b=moved_to["b"],
    )

    daemon = dockerd_factory(root)
    listed = {tag: image["Id"] for image in daemon.api("GET", "/v1.41/images/json").json() for tag in image["RepoTags"] or []}
    for name in ("a", "b", "c", "base"):
        assert listed[f"{registry.host}/conc/{name}:v1"] == ids[name]
    assert listed[f"{registry.host}/conc/moving:v1"] == report.images[f"{registry.host}/conc/moving:v1"]
    refused = pull_process(pushed["a"].reference, str(root))
    _, err = refused.communicate(timeout=60)
    assert refused.returncode != 0
    assert "in use by a running dockerd (pid %d" % daemon.process.pid in err, err
