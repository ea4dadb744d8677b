"""`emustore explain`: the text walk shows this root's real files; the HTML page renders in chromium."""

from __future__ import annotations

import json
from html import escape
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emustore.api import Store
from emustore.explain.html import render_html
from emustore.pull import PullOptions, pull
from emustore.stores.docker.layerdb import chain_ids
from emustore.stores.docker.store import DockerStore
from tests.integration.test_fsck import copy_root, fsck_image
from tests.support import png
from emustore.fsutil import remove_tree
from tests.support.canary import changes, make_canary, snapshot
from tests.support.browser import CHROMIUM, dump_dom, element_texts, screenshot
from tests.support.figures import record
from tests.support.imagefactory import ImageBuilder, LayerBuilder, PushedImage, busybox_image, whiteout_layers
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
    assert headings == [str(n) for n in range(1, len(pushed.diff_ids) + 6)]


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
    external = re.findall(r"""(?:src|href|action)\s*=\s*["']?(?!#)[^"'\s>]+|@import|url\((?!#)|https?://(?!www\.w3\.org/2000/svg)""", html)
    assert external == [], "the page must be self-contained"
    assert "<svg" in html and html.count("<script") == 2  # the data, then the code: both inline

    image = png.decode(screenshot(page, tmp_path / "explain.png", SHOT_W, SHOT_H))
    assert (image.width, image.height) == (SHOT_W, SHOT_H)
    pixels = image.pixels()
    colours = set(pixels)
    inked = sum(1 for p in pixels if min(p) < 200)  # text and lines, not background tints
    assert len(colours) > 16, "the screenshot is blank"
    assert inked > len(pixels) // 100, "too little drawn: %d dark pixels" % inked

    dom = dump_dom(page)
    assert "<svg" in dom
    for n, chain in enumerate(chain_ids(list(pushed.diff_ids))):
        box = element_texts(dom, "id", f"layer-{n}")
        assert len(box) == 1 and chain in box[0], f"layer {n}'s box does not show its chain id"
        assert f'href="#layer-{n}"' in dom, "no link jumps to layer %d's box" % n


def teaching_image() -> ImageBuilder:
    """busybox, then /etc/os-release and files to delete, then whiteouts, opaque dirs and a new
    /etc/os-release: the questions a learner brings (who put it there, what a whiteout hides)."""
    content, deletions = whiteout_layers()
    content.dir("etc/").file("etc/os-release", b'NAME="first"\n')
    deletions.dir("etc/").file("etc/os-release", b'NAME="teaching"\nVERSION_ID=2\n', mode=0o640)
    return busybox_image("docker", cmd=("sh",)).layer(content, created_by="files").layer(deletions, created_by="changes")


@pytest.fixture(scope="module")
def taught(registry: RegistryServer) -> PushedImage:
    return teaching_image().push(registry.host, "explain/teach", "v1")


@pytest.fixture(scope="module")
def taught_root(taught: PushedImage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explain-teach") / "root"
    pull(taught.reference, root)
    return root


def diff_dir(root: Path, pushed: PushedImage, index: int) -> Path:
    store = DockerStore(root)
    return store.overlay2.diff_dir(store.layers.read(chain_ids(list(pushed.diff_ids))[index]).cache_id)


def test_each_layer_shows_what_it_changes(taught_root: Path, taught: PushedImage) -> None:
    result = emustore("explain", taught.reference, "--root", str(taught_root))
    assert result.returncode == 0, result.stderr
    layer3 = result.stdout.split("7. Layer 3 (top)")[1].split("\n8. ")[0]
    gone = os.lstat(diff_dir(taught_root, taught, 2) / "w" / "gone")
    assert "deleted   c--------- 1000:1000          0,0  /w/gone  (whiteout)" in layer3
    assert f"hides layer 2: -rw-r--r-- 0:0                  {gone.st_size}  /w/gone" in layer3
    assert "hides layer 2: -rw-r--r-- 0:0                  2  /w/gonedir/f" in layer3
    assert "opaque    drwxr-xr-x 0:0                  0  /w/opq1  (opaque: trusted.overlay.opaque=y)" in layer3
    assert "hides layer 2: -rw-r--r-- 0:0                  4  /w/opq1/old" in layer3
    assert "modified  -rw-r----- 0:0                 29  /etc/os-release" in layer3
    assert "hides layer 2: -rw-r--r-- 0:0                 13  /etc/os-release" in layer3
    assert "hides layer 1: lrwxrwxrwx 0:0                  7  /bin/true -> busybox" in layer3
    sizes = [int((DockerStore(taught_root).layers.path(c) / "size").read_text()) for c in chain_ids(list(taught.diff_ids))]
    wasted = 13 + 5 + 2 + 4 + 4  # os-release, gone, gonedir/f, opq1/old, opq2/old (symlinks hold no bytes)
    assert f"wasted    {wasted} bytes of lower files overwritten or deleted by this layer" in layer3
    assert f"{sizes[3]} bytes (layerdb size), {100 * sizes[3] / sum(sizes):.1f}% of the image" in layer3


def test_merged_view_says_which_layer_each_entry_comes_from(taught_root: Path, taught: PushedImage) -> None:
    whole = emustore("explain", taught.reference, "--root", str(taught_root), "--merged")
    assert whole.returncode == 0, whole.stderr
    lines = whole.stdout.splitlines()
    paths = [re.split(r" +", line, maxsplit=5)[5].split("  ")[0].split(" -> ")[0] for line in lines]
    assert paths == sorted(paths, key=lambda p: p.split("/")), "sorted by path, parents first"
    assert "layer 3   -rw-r----- 0:0                 29  /etc/os-release" in lines
    assert "layer 2   -rw-r--r-- 0:0                  5  /w/keep" in lines
    assert "layer 3   -rw-r--r-- 0:0                  4  /w/opq1/new" in lines
    for gone in ("/w/gone", "/w/gonedir", "/w/gonedir/f", "/w/opq1/old", "/w/opq2/old", "/bin/true"):
        assert not any(line.endswith("  " + gone) or ("  " + gone + " ") in line for line in lines), gone
    sub = emustore("explain", taught.reference, "--root", str(taught_root), "--merged", "/w/opq1")
    assert sub.stdout.splitlines() == [line for line in lines if "/w/opq1" in line]
    again = emustore("explain", taught.reference, "--root", str(taught_root), "--merged")
    assert again.stdout == whole.stdout
    missing = emustore("explain", taught.reference, "--root", str(taught_root), "--merged", "/nothere")
    assert (missing.returncode, missing.stdout, missing.stderr) == (125, "", f"emustore: /nothere: not in the merged view of {taught.reference}\n")


def expected_mount(taught_root: Path, taught: PushedImage) -> tuple[str, str]:
    """(dockerd's options for a new container, the read-only look options), from the files of the root."""
    store = DockerStore(taught_root)
    top = store.layers.read(chain_ids(list(taught.diff_ids))[-1]).cache_id
    home = taught_root.absolute() / "overlay2"
    lowers = [f"{home}/l/<INIT-LINK>", f"{home}/l/{store.overlay2.link_of(top)}"]
    lowers += [f"{home}/{element}" for element in store.overlay2.lower_of(top).split(":")]
    index = "index=off," if Path("/sys/module/overlay/parameters/index").exists() else ""
    options = f"{index}lowerdir={':'.join(lowers)},upperdir={home}/<CONTAINER-LAYER-ID>/diff,workdir={home}/<CONTAINER-LAYER-ID>/work"
    return options, f"ro,lowerdir={home}/{top}/diff:{':'.join(lowers[2:])}"


def test_mount_section_builds_dockerd_options_from_the_links(taught_root: Path, taught: PushedImage) -> None:
    result = emustore("explain", taught.reference, "--root", str(taught_root))
    options, look = expected_mount(taught_root, taught)
    assert f"     {options}\n" in result.stdout
    assert f"mount -t overlay overlay -o {look} /mnt/emustore-look" in result.stdout


def top_layer_with(root: Path, pushed: PushedImage, path: str) -> int:
    """The topmost layer whose diff dir has `path` (what a learner should be told)."""
    return max(n for n in range(len(pushed.diff_ids)) if os.path.lexists(diff_dir(root, pushed, n) / path))


def test_page_answers_a_learners_questions_without_javascript(taught_root: Path, taught: PushedImage, tmp_path: Path) -> None:
    require_binary(CHROMIUM, "chromium not installed (browser tier; CI=true makes this a failure)")
    page = tmp_path / "teach.html"
    assert emustore("explain", taught.reference, "--root", str(taught_root), "--html", str(page)).returncode == 0
    static = page.with_name("static.html")  # the page as a browser without JavaScript shows it
    static.write_text(re.sub(r"<script\b.*?</script>", "", page.read_text(), flags=re.DOTALL))
    dom = dump_dom(static)
    assert "<script" not in dom
    owner = top_layer_with(taught_root, taught, "etc/os-release")
    merged = element_texts(dom, "id", "merged-listing")[0]
    assert re.search(rf"^layer {owner} +-rw-r----- 0:0 +29  /etc/os-release$", merged, re.MULTILINE), merged
    deleter = top_layer_with(taught_root, taught, "w/gone")
    (whiteout,) = [t for t in element_texts(dom, "data-path", "/w/gone") if "whiteout" in t]
    assert whiteout in element_texts(dom, "id", f"layer-{deleter}")[0]
    assert re.search(r"whiteout hides layer 2: -rw-r--r-- 0:0 +5  /w/gone$", whiteout), whiteout
    (opaque,) = element_texts(dom, "data-path", "/w/opq1")
    assert re.search(r"opaque dir hides layer 2: -rw-r--r-- 0:0 +4  /w/opq1/old$", opaque), opaque
    options, look = expected_mount(taught_root, taught)
    assert element_texts(dom, "id", "mount-options") == [options]
    assert element_texts(dom, "id", "look-command") == [f"mkdir -p /mnt/emustore-look && mount -t overlay overlay -o {look} /mnt/emustore-look"]


def test_page_search_and_trees_with_javascript(taught_root: Path, taught: PushedImage, tmp_path: Path) -> None:
    require_binary(CHROMIUM, "chromium not installed (browser tier; CI=true makes this a failure)")
    page = tmp_path / "teach.html"
    assert emustore("explain", taught.reference, "--root", str(taught_root), "--html", str(page)).returncode == 0
    found = element_texts(dump_dom(page, "search=/etc/os-release"), "data-path", "/etc/os-release")
    assert found[0] == "/etc/os-release: the container sees it from layer 3 — layer 2 added, layer 3 modified", found
    gone = element_texts(dump_dom(page, "search=w/gone"), "data-path", "/w/gone")
    assert gone[0] == "/w/gone: not in the merged view — layer 2 added, layer 3 deleted (whiteout)", gone
    dom = dump_dom(page, "path=/w/opq1/new")
    assert element_texts(dom, "class", "hit") == ["new layer 3 -rw-r--r-- 0:0 4"]
    assert 'data-path="/w/opq1/old"' not in dom, "the merged tree shows a file the opaque dir hides"
    assert len(element_texts(dom, "class", "row")) < 20, "the trees must be built lazily"



def big_image(files: int) -> ImageBuilder:
    """busybox, then `files` small files in 100-file dirs over two layers; the second overwrites a
    tenth of the first and deletes whole dirs, as a large image's later layers do."""
    first, second = LayerBuilder(), LayerBuilder()
    half = files // 2
    for n in range(half):
        first.file(f"srv/d{n // 100:03d}/f{n % 100:02d}.txt", b"first %d\n" % n)
    for n in range(half, files):
        second.file(f"opt/d{n // 100:03d}/f{n % 100:02d}.txt", b"second %d\n" % n)
    for n in range(0, half, 10):
        if n // 100 % 25 != 1:
            second.file(f"srv/d{n // 100:03d}/f{n % 100:02d}.txt", b"overwritten %d\n" % n)
    for d in range(1, half // 100, 25):
        second.whiteout(f"srv/d{d:03d}")
    return busybox_image("docker").layer(first, created_by="first half").layer(second, created_by="second half")


def count_elements(dom: str) -> int:
    return len(re.findall(r"<[a-zA-Z]", dom))


def test_page_of_30000_files_is_fast_and_small(tmp_path: Path) -> None:
    require_binary(CHROMIUM, "chromium not installed (browser tier; CI=true makes this a failure)")
    archive, root = tmp_path / "big.tar", tmp_path / "root"
    big_image(30_000).write_docker_archive(archive, "big:v1")
    list(Store(root).load(archive))
    started = time.monotonic()
    walk = Store(root).explain("big:v1")
    walked = time.monotonic()
    html = render_html(walk)
    rendered = time.monotonic()
    page = tmp_path / "big.html"
    page.write_text(html)
    assert walk.files is not None and len(walk.files.merged) > 29_000
    dirs, deleted = 150, len(range(1, 150, 25))  # 15,000 files a layer, 100 a dir; big_image's whiteouts
    assert walk.files.layers[3].counts() == {
        "added": 1 + 150 + 15_000, "modified": (dirs - deleted) * 10, "deleted": deleted, "unchanged": 1 + dirs - deleted}
    assert walk.files.layers[3].wasted == sum(len(b"first %d\n" % n) for n in range(15_000) if n % 10 == 0 or n // 100 % 25 == 1)
    started_browser = time.monotonic()
    dom = dump_dom(page, "search=/srv/d123/f40.txt")
    browsed = time.monotonic()
    found = element_texts(dom, "data-path", "/srv/d123/f40.txt")
    assert found[0] == "/srv/d123/f40.txt: the container sees it from layer 3 — layer 2 added, layer 3 modified", found
    elements = count_elements(dom)
    figures = {
        "files": len(walk.files.merged), "walk_ms": int(1000 * (walked - started)), "html_ms": int(1000 * (rendered - walked)),
        "page_kib": len(html.encode()) // 1024, "dom_elements": elements, "chromium_ms": int(1000 * (browsed - started_browser)),
    }
    record("explain page of 30,000 files", **figures)
    assert figures["walk_ms"] + figures["html_ms"] < 20_000, figures
    assert figures["page_kib"] < 6 * 1024, figures
    assert elements < 3_000, "the DOM must hold only what is open: %d elements" % elements


def test_links_and_ids_aimed_out_of_the_root_are_never_followed(root: Path, pushed: PushedImage, tmp_path: Path) -> None:
    """A tampered root: a diff dir, an l/ name, a cache-id, a mounts record and container config
    files aimed outside; explain shows the breakage and lists nothing of the canary."""
    canary = make_canary(tmp_path / "canary")
    before = snapshot(canary)
    broken = copy_root(root, tmp_path / "tampered")
    store = DockerStore(broken)
    chains = chain_ids(list(pushed.diff_ids))
    base, top = store.layers.read(chains[0]), store.layers.read(chains[-1])
    diff = store.overlay2.diff_dir(base.cache_id)
    remove_tree(diff)
    diff.symlink_to(canary)  # case 1: a diff dir that is a link
    (store.overlay2.layer_dir(top.cache_id) / "lower").write_text("l/../../../canary:l/" + store.overlay2.link_of(base.cache_id))  # case 2
    (store.layers.path(chains[1]) / "cache-id").write_text("../../../../canary")  # case 3
    cid = "c" * 64
    (broken / "containers" / cid).mkdir(parents=True)
    (broken / "containers" / cid / "config.v2.json").symlink_to("/dev/zero")  # case 4: never read
    cid2 = "d" * 64
    (broken / "containers" / cid2).mkdir()
    (broken / "containers" / cid2 / "config.v2.json").write_text(json.dumps({"Image": pushed.image_id, "Name": "/t"}))
    mount = store.layers.mount_path(cid2)
    mount.mkdir(parents=True)
    (mount / "mount-id").write_text("../../canary")  # case 5: not an id
    (mount / "init-id").write_text("../../canary-init")
    walk = Store(broken).explain(pushed.reference)
    assert walk.files is not None
    listed = [c.entry.path for layer in walk.files.layers for c in layer.changes]
    assert not any(name in path for path in listed for name in ("decoy", "inner", "sub"))
    assert walk.files.layers[0].changes == [] and walk.layers[1].overlay_dir is None
    assert [e.target for e in walk.layers[-1].lower] == [None, "../%s/diff" % base.cache_id]
    (container,) = walk.containers
    assert (container.id, container.upper, container.init, container.mount) == (cid2, None, None, None)
    result = emustore("explain", pushed.reference, "--root", str(broken), "--merged")
    assert result.returncode == 0 and "decoy" not in result.stdout and "/etc/motd" in result.stdout
    config = store.images.path(pushed.image_id)
    config.unlink()
    config.symlink_to("/dev/zero")  # case 6: an endless config, never read
    by_link = emustore("explain", pushed.reference, "--root", str(broken))
    assert (by_link.returncode, by_link.stderr.count("\n")) == (1, 1) and "does not verify" in by_link.stderr, by_link.stderr
    index = broken / "image" / "overlay2" / "repositories.json"
    index.rename(tmp_path / "repositories.json")
    index.symlink_to(tmp_path / "repositories.json")  # case 7: the index a link (outside the root)
    linked = emustore("explain", pushed.reference, "--root", str(broken))
    assert (linked.returncode, linked.stdout) == (1, "") and "not a regular file" in linked.stderr, linked.stderr
    assert snapshot(canary) == before
    record("explain tampered root", cases=7, canary_entries_listed=0, outside_changes=len(changes(before, snapshot(canary))))


def test_containers_show_their_layers_records_config_and_mount(taught_root: Path, taught: PushedImage, tmp_path: Path) -> None:
    root = copy_root(taught_root, tmp_path / "with-container")
    created = emustore("create", "--root", str(root), "--name", "web", taught.reference)
    assert created.returncode == 0, created.stderr
    cid = created.stdout.strip()
    mount = DockerStore(root).layers.read_mount(cid)
    assert mount.mount_id and mount.init_id == mount.mount_id + "-init"
    home = root.absolute() / "overlay2"
    init_link = (home / mount.init_id / "link").read_text()
    text = emustore("explain", taught.reference, "--root", str(root)).stdout
    section = text.split(f"Container {cid[:12]} /web\n")[1]
    lower = (home / mount.mount_id / "lower").read_text()
    assert lower.startswith(f"l/{init_link}:")
    options, _ = expected_mount(root, taught)
    options = options.replace("<INIT-LINK>", init_link).replace("<CONTAINER-LAYER-ID>", mount.mount_id)
    for fact in (f"mount-id  {mount.mount_id}  -> the writable layer's overlay2 dir", f"init-id   {mount.init_id}",
                 f"parent    {chain_ids(list(taught.diff_ids))[-1]}  = the image's top chain id",
                 f"init      overlay2/{mount.init_id}/  link l/{init_link}", f"layer     overlay2/{mount.mount_id}/",
                 f"lower {lower}", "config.v2.json (", "hostconfig.json (", f"     {options}\n",
                 f"{home}/l/{init_link}  (the container's init layer)", "   rw diff   0 entries\n",
                 "init diff 12 entries: 11 added, 1 unchanged", "added     -rwxr-xr-x 0:0                  0  /etc/hosts"):
        assert fact in section, f"{fact!r} not in:\n{section}"
    page = tmp_path / "c.html"
    assert emustore("explain", taught.reference, "--root", str(root), "--html", str(page)).returncode == 0
    html = page.read_text()
    box = html.split(f'<article class="box" id="container-{cid}">')[1].split("</article>")[0]
    assert f"{mount.mount_id}" in box and escape(options) in box and '<tr data-path="/.dockerenv">' in box


def test_mount_shows_what_the_merged_view_says(taught_root: Path, taught: PushedImage, scratch: Path) -> None:
    """The kernel's overlayfs, mounted by --mount from the root's l/ links, lists exactly the merged view."""
    target = scratch / "look"
    target.mkdir()
    (target / "busy").write_text("")
    busy = emustore("explain", taught.reference, "--root", str(taught_root), "--mount", str(target))
    assert (busy.returncode, busy.stderr) == (125, f"emustore: --mount {target}: not an empty directory\n"), busy.stderr
    (target / "busy").unlink()
    result = emustore("explain", taught.reference, "--root", str(taught_root), "--mount", str(target))
    assert result.returncode == 0, result.stderr
    try:
        seen = {}
        for dirpath, dirnames, filenames in os.walk(target):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                st = path.lstat()
                seen["/" + str(path.relative_to(target))] = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_size if stat.S_ISREG(st.st_mode) else 0)
        with pytest.raises(OSError):
            (target / "w" / "new-file").write_text("read-only")
    finally:
        subprocess.run(["umount", str(target)], check=True)
    walk = Store(taught_root).explain(taught.reference)
    assert walk.files is not None
    ours = {m.entry.path: (stat.S_IFMT(m.entry.mode), m.entry.mode & 0o7777, m.entry.counted_size) for m in walk.files.merged}
    assert seen == ours


def test_a_rootless_root_marks_opaque_dirs_in_user_xattrs_and_mounts_with_userxattr(taught: PushedImage, tmp_path: Path) -> None:
    root = tmp_path / "rootless"
    pull(taught.reference, root, options=PullOptions(rootless=True))
    text = emustore("explain", taught.reference, "--root", str(root)).stdout
    assert "opaque    drwxr-xr-x 0:0                  0  /w/opq1  (opaque: user.overlay.opaque=y)" in text
    assert "hides layer 2: -rw-r--r-- 0:0                  4  /w/opq1/old" in text
    options, look = expected_mount(root, taught)
    index = "index=off," if options.startswith("index=off,") else ""
    assert f"     {index}userxattr,{options.removeprefix(index)}\n" in text
    assert f"mount -t overlay overlay -o ro,userxattr,{look.removeprefix('ro,')} /mnt/emustore-look" in text
