"""`emustore explain`: the text walk shows this root's real files; the HTML page renders in chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emustore.pull import pull
from emustore.stores.docker.layerdb import chain_ids
from emustore.stores.docker.store import DockerStore
from tests.integration.test_fsck import copy_root, fsck_image
from tests.support import png
from tests.support.browser import CHROMIUM, dump_dom, screenshot
from tests.support.imagefactory import PushedImage
from tests.support.registry import RegistryServer
from tests.support.tiers import require_binary

pytestmark = pytest.mark.registry
SHOT_W, SHOT_H = 1280, 900


def emustore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emustore", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer) -> PushedImage:
    return fsck_image().push(registry.host, "explain/three", "v1")  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def root(pushed: PushedImage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explain") / "root"
    pull(pushed.reference, root)
    return root


def expected_facts(root: Path, pushed: PushedImage) -> list[str]:
    """Lines the walk must contain, read straight from the files of the root."""
    store = DockerStore(root)
    chains = chain_ids(list(pushed.diff_ids))
    facts = [
        f'{{"Repositories": {{"{pushed.repository}": {{"{pushed.reference}": "{pushed.image_id}"}}}}}}',
        f"sha256(file) = {pushed.image_id}  (equals the image id)",
        f"chain[0] = {chains[0]}",
    ]
    for n, chain in enumerate(chains):
        record = store.layers.read(chain)
        link = store.overlay2.link_of(record.cache_id)
        facts += [
            f"layerdb entry image/overlay2/layerdb/sha256/{chain.split(':')[1]}/  (named by chain[{n}])",
            f"cache-id  {(store.layers.path(chain) / 'cache-id').read_text()}  -> names the overlay2 dir",
            f"size      {(store.layers.path(chain) / 'size').read_text()}  ",
            f"overlay2 dir overlay2/{record.cache_id}/",
            f"link      {link}",
            f"overlay2/l/{link} -> {os.readlink(root / 'overlay2' / 'l' / link)}",
        ]
        if n:
            facts += [f'chain[{n}] = sha256("{chains[n - 1]} {pushed.diff_ids[n]}")', f"= {chain}"]
            facts.append(f"lower     {store.overlay2.lower_of(record.cache_id)}")
    return facts


def test_text_walk_shows_the_files_of_this_root(root: Path, pushed: PushedImage) -> None:
    result = emustore("explain", pushed.reference, "--root", str(root))
    assert result.returncode == 0, result.stderr
    for fact in expected_facts(root, pushed):
        assert fact in result.stdout, f"{fact!r} not in:\n{result.stdout}"
    headings = re.findall(r"^(\d+)\. ", result.stdout, re.MULTILINE)
    assert headings == [str(n) for n in range(1, len(pushed.diff_ids) + 5)]


def test_image_id_prefix_and_unknown_reference(root: Path, pushed: PushedImage) -> None:
    by_id = emustore("explain", pushed.image_id.split(":")[1][:12], "--root", str(root))
    assert by_id.returncode == 0, by_id.stderr
    assert "was given as an image id" in by_id.stdout
    assert f"References to this image: {pushed.reference}, {pushed.repository}@{pushed.digest}" in by_id.stdout
    missing = emustore("explain", "nothere:v9", "--root", str(root))
    assert (missing.returncode, missing.stdout, missing.stderr) == (1, "", "emustore: No such image: nothere:v9\n")


def test_a_broken_link_is_shown_not_fatal(root: Path, pushed: PushedImage, tmp_path: Path) -> None:
    broken = copy_root(root, tmp_path / "broken")
    store = DockerStore(broken)
    base = store.layers.read(chain_ids(list(pushed.diff_ids))[0])
    link = store.overlay2.link_of(base.cache_id)
    (broken / "overlay2" / "l" / link).unlink()
    result = emustore("explain", pushed.reference, "--root", str(broken))
    assert result.returncode == 0, result.stderr
    assert f"overlay2/l/{link} -> (missing)" in result.stdout
    assert f"l/{link} -> (missing)  (layer 0)" in result.stdout


def test_html_page_renders_in_headless_chromium(root: Path, pushed: PushedImage, tmp_path: Path) -> None:
    require_binary(CHROMIUM, "chromium not installed (browser tier; CI=true makes this a failure)")
    page = tmp_path / "explain.html"
    result = emustore("explain", pushed.reference, "--root", str(root), "--html", str(page))
    assert (result.returncode, result.stdout) == (0, f"Wrote {page}\n"), result.stderr
    html = page.read_text()
    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?!#)[^"'\s>]+|@import|url\((?!#)""", html)
    assert external == [], "the page must be self-contained"
    assert "<svg" in html and "<script" not in html

    image = png.decode(screenshot(page, tmp_path / "explain.png", SHOT_W, SHOT_H))
    assert (image.width, image.height) == (SHOT_W, SHOT_H)
    pixels = image.pixels()
    colours = set(pixels)
    inked = sum(1 for p in pixels if min(p) < 200)  # text and lines, not background tints
    assert len(colours) > 16, "the screenshot is blank"
    assert inked > len(pixels) // 100, "too little drawn: %d dark pixels" % inked

    dom = dump_dom(page)
    assert "<svg" in dom
    for chain in chain_ids(list(pushed.diff_ids)):
        assert chain in dom
