"""`emustore fsck` on an emustore-written root: clean, each injected corruption, and --repair."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from emustore.layers.unprivileged import RECORD_NAME, Unwritable

from emustore.fsck import check, repair
from emustore.pull import pull
from emustore.stores.docker.layerdb import chain_ids
from emustore.stores.docker.staging import create_set
from emustore.stores.docker.store import DockerStore
from tests.support.imagefactory import FACTORY_SUITE, LayerBuilder, PushedImage, busybox_image
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.registry


def emustore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emustore", *args], capture_output=True, text=True, timeout=600)


def copy_root(source: Path, target: Path) -> Path:
    """A byte-faithful copy (devices, xattrs, links) a test may break."""
    subprocess.run(["cp", "-a", "--", str(source), str(target)], check=True)
    return target


def fsck_image() -> object:
    """busybox plus a layer with a file, so the top layer has a parent and a lower chain."""
    return busybox_image("docker").layer(LayerBuilder().file("etc/motd", b"hello fsck\n"), created_by="motd")


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer) -> PushedImage:
    return fsck_image().push(registry.host, "fsck/three", "v1")  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def pristine(pushed: PushedImage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fsck") / "root"
    pull(pushed.reference, root)
    return root


@pytest.fixture
def root(pristine: Path, tmp_path: Path) -> Path:
    return copy_root(pristine, tmp_path / "root")


def layer_paths(root: Path, pushed: PushedImage, index: int) -> tuple[Path, Path]:
    """(layerdb dir, overlay2 dir) of the image's layer at `index`."""
    store = DockerStore(root)
    record = store.layers.read(chain_ids(list(pushed.diff_ids))[index])
    return store.layers.path(record.chain_id), store.overlay2.layer_dir(record.cache_id)


def test_clean_root_has_no_problems(root: Path) -> None:
    assert check(root) == []
    result = emustore("fsck", "--root", str(root))
    said = f"fsck: {root}: Docker 20.10's dialect (no engine-id); 0 problems\n"
    assert (result.returncode, result.stdout, result.stderr) == (0, "", said)


def delete_link(root: Path, pushed: PushedImage) -> str:
    _, layer_dir = layer_paths(root, pushed, 0)
    link = root / "overlay2" / "l" / (layer_dir / "link").read_text()
    link.unlink()
    return f"{link}: missing"


def change_size(root: Path, pushed: PushedImage) -> str:
    meta, _ = layer_paths(root, pushed, 2)
    size = int((meta / "size").read_text())
    (meta / "size").write_text(str(size + 1))
    return f"{meta / 'size'}: is {size + 1}, but "


def newline_in_size(root: Path, pushed: PushedImage) -> str:
    meta, _ = layer_paths(root, pushed, 1)
    (meta / "size").write_text((meta / "size").read_text() + "\n")
    return f"{meta / 'size'}: malformed content"


def alter_file(root: Path, pushed: PushedImage) -> str:
    _, layer_dir = layer_paths(root, pushed, 2)
    motd = layer_dir / "diff" / "etc" / "motd"
    motd.write_bytes(motd.read_bytes().upper())  # same length: only the content check can tell
    return f'{layer_dir / "diff"}: cannot be reassembled: file integrity checksum failed for "etc/motd"'


def alter_tar_split_header(root: Path, pushed: PushedImage) -> str:
    meta, layer_dir = layer_paths(root, pushed, 0)
    path = meta / "tar-split.json.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    first = json.loads(lines[0])
    header = bytearray(base64.b64decode(first["payload"]))
    header[136] ^= 1  # a digit of the first member's mtime
    first["payload"] = base64.b64encode(bytes(header)).decode("ascii")
    lines[0] = json.dumps(first, separators=(",", ":")).encode("ascii") + b"\n"
    path.write_bytes(gzip.compress(b"".join(lines)))
    return f"{layer_dir / 'diff'}: reassembles to sha256:"


def staging_dir(root: Path, pushed: PushedImage) -> str:
    leftover = root / "tmp" / "emustore-staging" / "0123abcd"
    (leftover / "diff").mkdir(parents=True)
    return f"{leftover}: leftover of an interrupted pull"


def orphan_dir(root: Path, pushed: PushedImage) -> str:
    orphan = root / "overlay2" / ("ab" * 32)
    (orphan / "diff").mkdir(parents=True)
    (orphan / "link").write_text("A" * 26)
    os.symlink(f"../{orphan.name}/diff", root / "overlay2" / "l" / ("A" * 26))
    return f"{orphan}: orphan: no layer or container refers to it"


def truncate_repositories(root: Path, pushed: PushedImage) -> str:
    path = root / "image" / "overlay2" / "repositories.json"
    path.write_bytes(path.read_bytes()[:-7])
    return f"{path}: malformed; dockerd would not start on this root"


def bad_chain(root: Path, pushed: PushedImage) -> str:
    meta, _ = layer_paths(root, pushed, 2)
    (meta / "parent").write_text(chain_ids(list(pushed.diff_ids))[0])
    return f"{meta}: chain id does not recompute"


def wrong_lower(root: Path, pushed: PushedImage) -> str:
    _, layer_dir = layer_paths(root, pushed, 2)
    (layer_dir / "lower").write_text((layer_dir / "lower").read_text().split(":")[0])
    return f"{layer_dir / 'lower'}: is "


def config_altered(root: Path, pushed: PushedImage) -> str:
    path = root / "image" / "overlay2" / "imagedb" / "content" / "sha256" / pushed.image_id.split(":")[1]
    path.write_bytes(path.read_bytes() + b" ")
    return f"{path}: content does not hash to its name"


def wrong_mode(root: Path, pushed: PushedImage) -> str:
    _, layer_dir = layer_paths(root, pushed, 1)
    (layer_dir / "link").chmod(0o600)
    return f"{layer_dir / 'link'}: mode 0600, dockerd writes 0644"


def pulled_without_root(root: Path, pushed: PushedImage) -> str:
    _, layer_dir = layer_paths(root, pushed, 0)
    record = Unwritable()
    record.owner(0, 0)
    record.device(b"dev/null", "char", 1, 3, 0o666)
    (layer_dir / RECORD_NAME).write_bytes(record.to_json())
    return f"{layer_dir / RECORD_NAME}: pulled without root: 1 owners, 1 device nodes not written"


def diff_is_symlink(root: Path, pushed: PushedImage) -> str:
    """What a hostile layer could once leave: diff/ replaced by a link to a host dir."""
    _, layer_dir = layer_paths(root, pushed, 1)
    outside = root.parent / "host-dir"
    outside.mkdir()
    (outside / "secret").write_bytes(b"host\n")
    os.rename(layer_dir / "diff", layer_dir / "diff.moved")
    os.symlink(outside, layer_dir / "diff")
    return f"{layer_dir / 'diff'}: not a directory"


def lower_is_symlink(root: Path, pushed: PushedImage) -> str:
    _, layer_dir = layer_paths(root, pushed, 2)
    lower = layer_dir / "lower"
    (layer_dir / "lower.real").write_bytes(lower.read_bytes())
    lower.unlink()
    os.symlink("lower.real", lower)
    return f"{lower}: a symlink (to lower.real): only l/ holds links"


def layer_dir_is_symlink(root: Path, pushed: PushedImage) -> str:
    _, layer_dir = layer_paths(root, pushed, 0)
    moved = root.parent / "moved-layer"
    os.rename(layer_dir, moved)
    os.symlink(moved, layer_dir)
    return f"{layer_dir}: a symlink (to {moved}): only l/ holds links"


CORRUPTIONS: dict[str, Callable[[Path, PushedImage], str]] = {
    "diff-is-symlink": diff_is_symlink,
    "lower-is-symlink": lower_is_symlink,
    "layer-dir-is-symlink": layer_dir_is_symlink,
    "pulled-without-root": pulled_without_root,
    "delete-l-link": delete_link,
    "change-size": change_size,
    "newline-in-size": newline_in_size,
    "alter-file-content": alter_file,
    "alter-tar-split-header": alter_tar_split_header,
    "staging-dir": staging_dir,
    "orphan-overlay2-dir": orphan_dir,
    "truncated-repositories-json": truncate_repositories,
    "bad-chain-id": bad_chain,
    "wrong-lower": wrong_lower,
    "config-altered": config_altered,
    "wrong-mode": wrong_mode,
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corruption_is_reported_with_its_path(name: str, root: Path, pushed: PushedImage) -> None:
    expected = CORRUPTIONS[name](root, pushed)
    result = emustore("fsck", "--root", str(root))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith(expected) for line in lines), f"wanted {expected!r} in:\n{result.stdout}"
    assert all(line.startswith(str(root) + "/") for line in lines), result.stdout


def leave_pull_leftovers(root: Path) -> list[Path]:
    """What interrupted pulls and writes leave behind; repair must remove exactly these."""
    staged = root / "tmp" / "emustore-staging" / "feed"  # an older emustore's layout: no lock
    (staged / "diff").mkdir(parents=True)
    (staged.parent / "feed.tar-split.json.gz").write_bytes(b"")
    dead_set = root / "tmp" / "emustore-staging" / "pull-0123456789abcdef"  # its lock file held by nobody
    (dead_set / "feed" / "diff").mkdir(parents=True)
    (dead_set.parent / (dead_set.name + ".lock")).write_bytes(b"")
    write_set = root / "image" / "overlay2" / "layerdb" / "tmp" / "write-set-123"
    write_set.mkdir()
    (write_set / "diff").write_text("sha256:" + "0" * 64)
    temp = root / "image" / "overlay2" / ".tmp-repositories.json42"
    temp.write_text("{")
    orphan = root / "overlay2" / ("cd" * 32)
    (orphan / "diff").mkdir(parents=True)
    link = root / "overlay2" / "l" / ("B" * 26)
    os.symlink(f"../{orphan.name}/diff", link)
    return sorted(
        [staged, staged.parent / "feed.tar-split.json.gz", dead_set, dead_set.parent / (dead_set.name + ".lock"),
         write_set, temp, orphan, link]
    )  # fmt: skip


def snapshot(root: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                found[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[str(path)] = "dir"
    return found


def test_repair_removes_leftovers_and_nothing_else(root: Path) -> None:
    """Nor the staging set of a writer still running (here this test process holds its lock)."""
    before = snapshot(root)
    leftovers = leave_pull_leftovers(root)
    live = create_set(DockerStore(root).layout, "pull")
    try:
        (live.dir / "staged").write_bytes(b"x")
        assert {p.path for p in check(root) if p.leftover} == set(leftovers)
        result = emustore("fsck", "--repair", "--root", str(root))
        assert (live.dir / "staged").read_bytes() == b"x" and live.lock.exists()
    finally:
        live.remove()
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(f"removed {path}" for path in leftovers)
    assert check(root) == []
    after = snapshot(root)
    lock = str(root / "tmp" / "emustore.lock")
    assert {k: v for k, v in after.items() if k != lock} == {k: v for k, v in before.items() if k != lock}


def test_repair_keeps_damage_that_is_not_a_leftover(root: Path, pushed: PushedImage) -> None:
    expected = newline_in_size(root, pushed)
    meta, layer_dir = layer_paths(root, pushed, 1)
    assert repair(root) == []
    assert layer_dir.is_dir()  # a broken layer's dir is still named by its cache-id: not an orphan
    result = emustore("fsck", "--repair", "--root", str(root))
    assert result.returncode == 1
    assert any(line.startswith(expected) for line in result.stdout.splitlines())


def test_missing_root_is_one_clear_line(tmp_path: Path) -> None:
    result = emustore("fsck", "--root", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert result.stderr == f"emustore: no data root at {tmp_path / 'nowhere'}\n"


def test_every_factory_image_checks_clean(registry: RegistryServer, tmp_path: Path) -> None:
    """Whiteouts, odd and long names, hard links, devices, padding, duplicate layers: all reassemble."""
    root = tmp_path / "suite"
    for name, build in sorted(FACTORY_SUITE.items()):
        pull(build().push(registry.host, f"fsck-suite/{name}", "v1").reference, root)
    assert [str(p) for p in check(root)] == []
