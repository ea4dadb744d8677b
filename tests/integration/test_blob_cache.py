"""--blob-cache against a real registry: a warm cache makes a pull ask the registry for no blob."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from emustore.pull import PullOptions, pull
from tests.support.imagefactory import LayerBuilder, busybox_image
from tests.support.registry import RegistryServer
from tests.support.treecompare import diff_trees

pytestmark = pytest.mark.registry


def blob_requests(registry: RegistryServer, repository: str, since: int) -> list[str]:
    """Access-log lines after byte `since` that fetch a blob of `repository` (GET or HEAD)."""
    with registry.log_path.open("rb") as log:
        log.seek(since)
        text = log.read().decode(errors="replace")
    pattern = re.compile(r'"(?:GET|HEAD) /v2/%s/blobs/sha256:' % re.escape(repository))
    return [line for line in text.splitlines() if pattern.search(line)]


def test_warm_cache_pull_requests_no_blob(registry: RegistryServer, tmp_path: Path) -> None:
    image = busybox_image().layer(LayerBuilder().dir("c/").file("c/f", b"cached\n"))
    pushed = image.push(registry.host, "cache/bb", "v1")
    cache = tmp_path / "cache"

    start = registry.log_path.stat().st_size
    pull(pushed.reference, tmp_path / "cold", PullOptions(blob_cache=cache))
    cold = blob_requests(registry, "cache/bb", start)
    assert len(cold) == len(pushed.layer_digests) + 1  # the layers and the config, once each
    assert sorted(p.name for p in (cache / "blobs/sha256").iterdir()) == sorted(
        d.split(":")[1] for d in (*pushed.layer_digests, pushed.image_id)
    )

    start = registry.log_path.stat().st_size
    pull(pushed.reference, tmp_path / "warm", PullOptions(blob_cache=cache))
    run = subprocess.run(
        [sys.executable, "-m", "emustore", "pull", "-q", "--blob-cache", str(cache), "--root", str(tmp_path / "cli"), pushed.reference],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert blob_requests(registry, "cache/bb", start) == []

    pull(pushed.reference, tmp_path / "uncached")
    for root in ("cold", "warm", "cli"):
        assert diff_trees(tmp_path / "uncached", tmp_path / root) == [], root
