"""The read model, inspect view, listing, tag/rmi/prune and du on small hand-made data roots."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

import emustore
from emustore.errors import InvalidReference, StoreError
from emustore.stores.docker.catalog import Catalog, NoSuchImage
from emustore.stores.docker.inspect import inspect_document
from emustore.stores.docker.layerdb import chain_ids
from emustore.stores.docker.listing import list_images, rows
from emustore.stores.docker.removal import ImageConflict, prune_images, remove_image, tag_image
from emustore.stores.docker.usage import disk_usage


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class RootBuilder:
    """Writes the files dockerd reads: layerdb, overlay2 dirs and links, imagedb, repositories.json."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.image = root / "image/overlay2"
        for path in ("imagedb/content/sha256", "imagedb/metadata/sha256", "layerdb/sha256", "distribution"):
            (self.image / path).mkdir(parents=True, exist_ok=True)
        (root / "overlay2/l").mkdir(parents=True, exist_ok=True)
        self.repos: dict[str, dict[str, str]] = {}
        self.save_repos()

    def layers(self, diff_ids: list[str], sizes: list[int]) -> list[str]:
        chains = chain_ids(diff_ids)
        for i, (chain, diff, size) in enumerate(zip(chains, diff_ids, sizes)):
            layer = self.image / "layerdb/sha256" / chain[7:]
            if layer.exists():
                continue
            layer.mkdir()
            cache = hashlib.sha256(chain.encode()).hexdigest()
            (layer / "diff").write_text(diff)
            (layer / "size").write_text(str(size))
            (layer / "cache-id").write_text(cache)
            link = ("L%025d" % int(cache[:12], 16))[:26]
            (self.root / "overlay2" / cache / "diff").mkdir(parents=True)
            (self.root / "overlay2" / cache / "link").write_text(link)
            os.symlink(f"../{cache}/diff", self.root / "overlay2/l" / link)
            if i:
                (layer / "parent").write_text(chains[i - 1])
                parent_dir = self.root / "overlay2" / (self.image / "layerdb/sha256" / chains[i - 1][7:] / "cache-id").read_text()
                lower = "l/" + (parent_dir / "link").read_text()
                if (parent_dir / "lower").exists():
                    lower += ":" + (parent_dir / "lower").read_text()
                (self.root / "overlay2" / cache / "lower").write_text(lower)
        return chains

    def image_config(self, diff_ids: list[str], created: str = "2023-01-02T03:04:05Z", **extra: object) -> str:
        config = {"architecture": "amd64", "os": "linux", "created": created, "config": {"Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}, **extra}
        raw = json.dumps(config).encode()
        image_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        (self.image / "imagedb/content/sha256" / image_id[7:]).write_bytes(raw)
        return image_id

    def add(self, repository: str, key: str, image_id: str) -> None:
        self.repos.setdefault(repository, {})[key] = image_id
        self.save_repos()

    def save_repos(self) -> None:
        (self.image / "repositories.json").write_text(json.dumps({"Repositories": self.repos}))

    def container(self, container_id: str, image_id: str, top_chain: str, running: bool = False) -> None:
        """A container's config and its layer's mount entry (which holds the image's layers)."""
        path = self.root / "containers" / container_id
        path.mkdir(parents=True)
        (path / "config.v2.json").write_text(json.dumps({"Image": image_id, "State": {"Running": running}}))
        mount = self.image / "layerdb/mounts" / container_id
        mount.mkdir(parents=True)
        (mount / "parent").write_text(top_chain)


D1, D2, D3, D4 = (digest(t) for t in ("one", "two", "three", "four"))
MANIFEST = digest("manifest")


@pytest.fixture
def store(tmp_path: Path) -> tuple[RootBuilder, dict[str, str]]:
    """base (2 layers, tag + digest), child (base + 1, newer), other (own layer, two repos)."""
    root = RootBuilder(tmp_path / "root")
    root.layers([D1, D2, D3], [1000, 20, 3])
    root.layers([D4], [500_000])
    ids = {
        "base": root.image_config([D1, D2]),
        "child": root.image_config([D1, D2, D3], created="2023-06-01T00:00:00.5+02:00"),
        "other": root.image_config([D4], created="2022-01-01T00:00:00Z"),
    }
    root.add("base", "base:v1", ids["base"])
    root.add("base", "base@" + MANIFEST, ids["base"])
    root.add("127.0.0.1:5000/child", "127.0.0.1:5000/child:v1", ids["child"])
    root.add("other", "other:latest", ids["other"])
    root.add("someorg/other", "someorg/other:2", ids["other"])
    return root, ids


def test_images_sizes_order_and_references(store: tuple[RootBuilder, dict[str, str]]) -> None:
    root, ids = store
    catalog = Catalog(root.root)
    images = catalog.images()
    assert [i.id for i in images] == [ids["child"], ids["base"], ids["other"]]
    assert [i.size for i in images] == [1023, 1020, 500_000]
    assert images[0].created.text == "2023-06-01T00:00:00.5+02:00"
    assert images[1].repo_tags == ["base:v1"] and images[1].repo_digests == ["base@" + MANIFEST]
    # sorted by full name: 127.0.0.1:5000/… < docker.io/library/… < docker.io/someorg/…
    assert images[2].repo_tags == ["other:latest", "someorg/other:2"]


def test_unloadable_layers_hide_images_above_them(store: tuple[RootBuilder, dict[str, str]]) -> None:
    root, ids = store
    chains = chain_ids([D1, D2, D3])
    (root.image / "layerdb/sha256" / chains[1][7:] / "size").write_text("20\n")  # dockerd refuses
    catalog = Catalog(root.root)
    assert set(catalog.layers()) == {chains[0], D4}
    assert [i.id for i in catalog.images()] == [ids["other"]]


def test_missing_parent_file_loads_as_a_base_layer_and_config_must_verify(store: tuple[RootBuilder, dict[str, str]]) -> None:
    root, ids = store
    chains = chain_ids([D1, D2, D3])
    (root.image / "layerdb/sha256" / chains[2][7:] / "parent").unlink()
    (root.image / "layerdb/sha256" / (D4[7:] + "-" + "0" * 64 + "-removing")).mkdir()
    with open(root.image / "imagedb/content/sha256" / ids["other"][7:], "ab") as config:
        config.write(b" ")
    catalog = Catalog(root.root)
    assert catalog.image(ids["child"]) is not None and catalog.image(ids["child"]).size == 3
    assert catalog.image(ids["other"]) is None


def test_resolve_like_getimage(store: tuple[RootBuilder, dict[str, str]]) -> None:
    root, ids = store
    catalog = Catalog(root.root)
    assert catalog.resolve("base:v1").id == ids["base"]
    assert catalog.resolve("docker.io/library/other").id == ids["other"]
    assert catalog.resolve("base@" + MANIFEST).id == ids["base"]
    assert catalog.resolve(ids["child"]).id == ids["child"]
    assert catalog.resolve(ids["child"][7:]).id == ids["child"]
    assert catalog.resolve(ids["child"][:19]).id == ids["child"]
    assert catalog.resolve(ids["child"][7:12]).id == ids["child"]
    with pytest.raises(NoSuchImage, match="^No such image: base$"):
        catalog.resolve("base")
    with pytest.raises(NoSuchImage):
        catalog.resolve("sha256:" + "0" * 64)
    with pytest.raises(InvalidReference):
        catalog.resolve("Base")


def test_inspect_document(store: tuple[RootBuilder, dict[str, str]]) -> None:
    root, ids = store
    catalog = Catalog(root.root)
    doc = inspect_document(catalog, catalog.resolve("127.0.0.1:5000/child:v1"))
    assert list(doc) == ["Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container",
                         "ContainerConfig", "DockerVersion", "Author", "Config", "Architecture", "Os",
                         "Size", "VirtualSize", "GraphDriver", "RootFS", "Metadata"]
    assert doc["Size"] == doc["VirtualSize"] == 1023
    assert doc["Config"]["Cmd"] == ["sh"] and doc["Config"]["Env"] is None and "ExposedPorts" not in doc["Config"]
    data = doc["GraphDriver"]["Data"]
    overlay = os.path.realpath(root.root / "overlay2")
    layers = [catalog.layers()[c].cache_id for c in chain_ids([D1, D2, D3])]
    assert data["UpperDir"] == f"{overlay}/{layers[2]}/diff"
    assert data["LowerDir"] == f"{overlay}/{layers[1]}/diff:{overlay}/{layers[0]}/diff"
    assert doc["Metadata"] == {"LastTagTime": "0001-01-01T00:00:00Z"}
    base = inspect_document(catalog, catalog.resolve("base:v1"))
    os.unlink(root.root / "overlay2/l" / (root.root / "overlay2" / layers[0] / "link").read_text())
    with pytest.raises(StoreError, match="readlink"):
        inspect_document(catalog, catalog.resolve("base:v1"))
    assert "LowerDir" in base["GraphDriver"]["Data"]


def test_listing_rows_and_filters(store: tuple[RootBuilder, dict[str, str]]) -> None:
    root, ids = store
    root.add("base", "base@" + digest("another manifest"), ids["base"])
    root.add("digestonly", "digestonly@" + MANIFEST, ids["other"])
    catalog = Catalog(root.root)
    summaries = list_images(catalog)
    base = summaries[1]
    assert [(r.repository, r.tag, r.digest) for r in rows(base, False)] == [("base", "v1", "<none>")]
    assert len(rows(base, True)) == 2
    other = [(r.repository, r.tag, r.digest) for r in rows(summaries[2], False)]
    assert other == [("other", "latest", "<none>"), ("someorg/other", "2", "<none>"), ("digestonly", "<none>", "")]
    assert [s.image.id for s in list_images(catalog, "*/other")] == [ids["other"]]
    assert [s.image.id for s in list_images(catalog, "base:v*")] == [ids["base"]]
    assert list_images(catalog, "nothing") == []


def test_tag_moves_a_tag_and_records_last_updated(store: tuple[RootBuilder, dict[str, str]]) -> None:
    root, ids = store
    assert tag_image(root.root, "base:v1", "127.0.0.1:5000/child:v1") == "127.0.0.1:5000/child:v1"
    assert tag_image(root.root, ids["other"][7:15], "new") == "new:latest"
    repos = json.loads((root.image / "repositories.json").read_bytes())["Repositories"]
    assert repos["127.0.0.1:5000/child"] == {"127.0.0.1:5000/child:v1": ids["base"]}
    assert repos["new"] == {"new:latest": ids["other"]}
    assert oct((root.image / "repositories.json").stat().st_mode & 0o777) == "0o600"
    stamp = (root.image / "imagedb/metadata/sha256" / ids["base"][7:] / "lastUpdated").read_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", stamp)
    assert Catalog(root.root).resolve("base:v1").last_tag_time.text == stamp
    with pytest.raises(Exception, match="refusing to create a tag with a digest reference"):
        tag_image(root.root, "base:v1", "x@" + MANIFEST)
    with pytest.raises(NoSuchImage):
        tag_image(root.root, "missing", "x")


def test_rmi_counts_references_and_shared_layers(store: tuple[RootBuilder, dict[str, str]]) -> None:
    root, ids = store
    chains = chain_ids([D1, D2, D3])
    records = [str(r) for r in remove_image(root.root, "other")]
    assert records == ["Untagged: other:latest"]
    records = [str(r) for r in remove_image(root.root, "base:v1")]
    assert records == ["Untagged: base:v1", "Untagged: base@" + MANIFEST, "Deleted: " + ids["base"]]  # layers used by child
    cache_top = Catalog(root.root).layers()[chains[2]].cache_id
    records = [str(r) for r in remove_image(root.root, "127.0.0.1:5000/child:v1")]
    assert records == ["Untagged: 127.0.0.1:5000/child:v1", "Deleted: " + ids["child"]] + ["Deleted: " + c for c in reversed(chains)]
    assert not (root.root / "overlay2" / cache_top).exists()
    assert sorted(p.name for p in (root.root / "overlay2/l").iterdir()) == [(root.root / "overlay2" / Catalog(root.root).layers()[D4].cache_id / "link").read_text()]
    assert os.listdir(root.image / "layerdb/sha256") == [D4[7:]]
    assert sorted(os.listdir(root.image / "imagedb/content/sha256")) == [ids["other"][7:]]


def test_rmi_conflicts(store: tuple[RootBuilder, dict[str, str]]) -> None:
    root, ids = store
    before = (root.image / "repositories.json").read_bytes()
    short = ids["other"][7:19]
    with pytest.raises(ImageConflict, match=rf"^conflict: unable to delete {short} \(must be forced\) - image is referenced in multiple repositories$"):
        remove_image(root.root, short)
    root.container("c" * 64, ids["child"], chain_ids([D1, D2, D3])[2])
    with pytest.raises(ImageConflict, match=r'^conflict: unable to remove repository reference "127.0.0.1:5000/child:v1" \(must force\) - container cccccccccccc is using its referenced image'):
        remove_image(root.root, "127.0.0.1:5000/child:v1")
    with pytest.raises(ImageConflict, match="image is being used by stopped container cccccccccccc"):
        remove_image(root.root, ids["child"])
    assert (root.image / "repositories.json").read_bytes() == before
    records = [str(r) for r in remove_image(root.root, "127.0.0.1:5000/child:v1", force=True)]
    assert records == ["Untagged: 127.0.0.1:5000/child:v1", "Deleted: " + ids["child"]]
    assert [str(r) for r in remove_image(root.root, ids["other"], force=True)][-1] == "Deleted: " + D4
    with pytest.raises(NoSuchImage):
        remove_image(root.root, "other")
    root.container("e" * 64, ids["base"], chain_ids([D1, D2])[1], running=True)
    with pytest.raises(ImageConflict, match=r"\(cannot be forced\) - image is being used by running container eeeeeeeeeeee"):
        remove_image(root.root, ids["base"], force=True)


def test_prune_dangling_then_all(store: tuple[RootBuilder, dict[str, str]]) -> None:
    root, ids = store
    remove_image(root.root, "127.0.0.1:5000/child:v1")
    dangling = root.image_config([D1, D2, D3], created="2020-01-01T00:00:00Z")
    root.layers([D1, D2, D3], [1000, 20, 3])
    root.add("dang", "dang@" + MANIFEST, dangling)
    report = prune_images(root.root)
    assert [str(r) for r in report.records] == ["Untagged: dang@" + MANIFEST, "Deleted: " + dangling, "Deleted: " + chain_ids([D1, D2, D3])[2]]
    assert report.reclaimed == 3
    root.container("d" * 64, ids["other"], D4)
    report = prune_images(root.root, all_images=True)
    assert {r.value for r in report.records if r.action == "Deleted"} == {ids["base"], D1, chain_ids([D1, D2])[1]}
    assert report.reclaimed == 1020
    assert [i.id for i in Catalog(root.root).images()] == [ids["other"]]


def test_disk_usage_shared_and_unique(store: tuple[RootBuilder, dict[str, str]]) -> None:
    root, ids = store
    usage = disk_usage(Catalog(root.root))
    by_id = {u.image.id: u for u in usage.images}
    assert (by_id[ids["child"]].shared_size, by_id[ids["child"]].unique_size) == (1020, 3)
    assert (by_id[ids["other"]].shared_size, by_id[ids["other"]].unique_size) == (0, 500_000)
    assert usage.layers_size == 501_023 and usage.reclaimable == 501_023
    assert {layer.chain_id: layer.images for layer in usage.layers}[D1] == 2


def test_store_api_and_errors(store: tuple[RootBuilder, dict[str, str]], tmp_path: Path) -> None:
    root, ids = store
    api = emustore.Store(root.root)
    assert [i.id for i in api.images("base")] == [ids["base"]]
    assert api.inspect("base:v1")["Id"] == ids["base"]
    assert api.tag("base:v1", "base:v2") == "base:v2"
    assert [str(r) for r in api.remove("base:v2")] == ["Untagged: base:v2"]
    assert callable(emustore.pull)
    (root.image / "repositories.json").write_text("{")
    with pytest.raises(StoreError, match="malformed"):
        api.images()
    with pytest.raises(emustore.errors.EmustoreError, match="not a directory"):
        emustore.Store(tmp_path / "absent").images()


def test_writers_refuse_a_missing_root(tmp_path: Path) -> None:
    for call in (lambda: tag_image(tmp_path / "absent", "a", "b"), lambda: remove_image(tmp_path / "absent", "a"),
                 lambda: prune_images(tmp_path / "absent")):
        with pytest.raises(emustore.errors.EmustoreError, match="not a directory"):
            call()
    assert not (tmp_path / "absent").exists()
