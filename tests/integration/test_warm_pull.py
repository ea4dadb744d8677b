"""A warm pull (image already in the root) asks the registry for the manifest only, no blob."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from emustore.pull import pull
from tests.support.imagefactory import LayerBuilder, busybox_image
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.registry


def test_warm_pull_needs_no_blob(registry: RegistryServer, tmp_path: Path) -> None:
    image = busybox_image().layer(LayerBuilder().file("warm", b"warm pull\n"), created_by="warm")
    pushed = image.push(registry.host, "warm/blobless", "v1")
    first = pull(pushed.reference, tmp_path / "root")
    assert first.downloaded

    name = pushed.repository.split("/", 1)[1]
    for digest in (pushed.image_id, *pushed.layer_digests):  # the config blob too
        gone = httpx.delete(f"{registry.url}/v2/{name}/blobs/{digest}")
        assert gone.status_code == 202, gone.text

    again = pull(pushed.reference, tmp_path / "root")
    assert not again.downloaded
    assert again.image_id == first.image_id
