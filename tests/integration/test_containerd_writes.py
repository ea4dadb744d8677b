"""`--store containerd` against a real registry, without a daemon: what a second pull writes, the
files' modes, refusals in one line with the store left as it was. containerd's own verdicts are in
tests/oracle/test_containerd_store.py."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emustore.api import PullOptions
from emustore.commands import store_root
from emustore.errors import StoreError
from emustore.pull import pull
from emustore.registry.options import RegistryOptions
from emustore.stores.containerd.layout import ContainerdRoot
from tests.support.containerdcompare import snapshot_chains
from tests.support.imagefactory import PushedImage
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.registry


def _options(registry: RegistryServer, **kw: object) -> PullOptions:
    return PullOptions(registry=RegistryOptions(insecure_registries=(registry.host,)), store="containerd", **kw)  # type: ignore[arg-type]


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every path of the root → (inode, mtime): what a later write left untouched keeps both."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            info = os.lstat(os.path.join(dirpath, name))
            found[os.path.relpath(os.path.join(dirpath, name), root)] = (info.st_ino, info.st_mtime_ns)
    return found


def test_second_pull_writes_only_what_is_new(
    factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    layout = ContainerdRoot(root)
    first, second = factory_suite["modes_owners"], factory_suite["shared_base"]
    pull(first.reference, root, _options(registry))
    before = _files(layout.snapshots) | {"blob/" + k: v for k, v in _files(layout.blobs).items()}
    chains_before = snapshot_chains(root)
    pull(second.reference, root, _options(registry))
    after = _files(layout.snapshots) | {"blob/" + k: v for k, v in _files(layout.blobs).items()}
    assert {path: after[path] for path in before} == before  # nothing rewritten
    new_blobs = {path for path in after.keys() - before.keys() if path.startswith("blob/")}
    expected = {"blob/" + d.split(":")[1] for d in {second.digest, second.image_id, second.layer_digests[-1]}}
    assert new_blobs == expected
    chains_after = snapshot_chains(root)
    assert set(chains_after.values()) - set(chains_before.values()) == {_top_chain(second)}
    for blob in os.listdir(layout.blobs):
        path = layout.blobs / blob
        assert os.stat(path).st_mode & 0o7777 == 0o444
        assert hashlib.sha256(path.read_bytes()).hexdigest() == blob
    assert os.listdir(layout.staging) == []


def _top_chain(image: PushedImage) -> str:
    from emustore.stores.docker.layerdb import chain_ids

    return chain_ids(list(image.diff_ids))[-1]


def test_a_corrupt_meta_db_is_refused_in_one_line_and_left_as_it_was(
    factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    meta = ContainerdRoot(root).meta_db
    meta.parent.mkdir(parents=True)
    meta.write_bytes(b"\0" * 8192)
    before = _files(root)
    done = subprocess.run(
        [sys.executable, "-m", "emustore", "pull", factory_suite["times"].reference, "--store", "containerd",
         "--root", str(root), "--insecure-registry", registry.host],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "EMUSTORE_DEBUG"},
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "meta.db" in lines[0], lines
    after = _files(root)
    assert {path: after.get(path) for path in before} == before
    assert meta.read_bytes() == b"\0" * 8192


def test_a_file_as_root_is_refused(factory_suite: dict[str, PushedImage], registry: RegistryServer, tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("not a dir")
    with pytest.raises(StoreError, match="cannot use .* as a containerd root"):
        pull(factory_suite["times"].reference, root, _options(registry))
    assert root.read_text() == "not a dir"


def test_root_defaults_only_for_containerd(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from emustore.errors import UsageError

    assert store_root(argparse.Namespace(root=None, store="containerd")) == "/var/lib/containerd"
    assert store_root(argparse.Namespace(root="/x", store="containerd")) == "/x"
    with pytest.raises(UsageError, match="--root"):
        store_root(argparse.Namespace(root=None, store="docker"))
