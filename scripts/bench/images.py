"""The benchmark images, built deterministically from files on this machine.

The same machine gives the same blobs in every run: files are walked in sorted order, every
header uses the factory's fixed mtime and owners, and synthetic content comes from a seeded
PRNG. Sizes are parameters so `--quick` can build small versions of the same shapes.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts.bench import debian
from tests.support.imagefactory import ImageBuilder, LayerBuilder, busybox_image

MiB = 1 << 20


@dataclass(frozen=True)
class BenchImage:
    """One image to pull: `twin` is what dockerd pulls instead when it cannot pull `image`."""

    name: str
    description: str
    image: ImageBuilder
    twin: ImageBuilder | None = None


def machine_files(roots: list[str], max_file: int, limit_bytes: int, limit_count: int) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of regular files under `roots`, sorted walk, within the limits."""
    total = count = 0
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath, name)
                try:
                    st = path.lstat()
                except OSError:
                    continue
                if not path.is_file() or path.is_symlink() or st.st_size > max_file:
                    continue
                if total + st.st_size > limit_bytes or count >= limit_count:
                    return
                total += st.st_size
                count += 1
                yield str(path).lstrip("/"), path


def layer_of(files: list[tuple[str, Path]], prefix: str = "") -> tuple[LayerBuilder, list[str]]:
    """A layer of the machine files `files` (with their directories), and the names it holds."""
    layer = LayerBuilder()
    made: set[str] = set()
    names = []
    for name, path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        name = prefix + name
        for directory in parent_dirs(name):
            if directory not in made:
                made.add(directory)
                layer.dir(directory)
        layer.file(name, data, mode=0o755 if os.access(path, os.X_OK) else 0o644)
        names.append(name)
    return layer, names


def parent_dirs(name: str) -> list[str]:
    """`a/b/c` -> [`a/`, `a/b/`]."""
    parts = name.split("/")[:-1]
    return ["/".join(parts[:depth]) + "/" for depth in range(1, len(parts) + 1)]


def files_layer(
    roots: list[str], *, max_file: int, limit_bytes: int, limit_count: int, prefix: str = ""
) -> tuple[LayerBuilder, list[str]]:
    """A layer of machine files (with their directories), and the names it holds."""
    return layer_of(list(machine_files(roots, max_file, limit_bytes, limit_count)), prefix)


def split(files: list[tuple[str, Path]], parts: int) -> list[list[tuple[str, Path]]]:
    """`files` cut into `parts` consecutive runs of near-equal counts (a directory stays together
    as far as the cut allows, as a build step's files do)."""
    size, extra = divmod(len(files), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(files[start:end])
        start = end
    return out


def repeated(roots: list[str], size: int) -> bytes:
    """`size` bytes of machine files (binaries compress about 3:1), cycled if needed."""
    out = bytearray()
    while len(out) < size:
        before = len(out)
        for _, path in machine_files(roots, 64 * MiB, size, 1 << 30):
            out += path.read_bytes()
            if len(out) >= size:
                break
        if len(out) == before:
            raise RuntimeError(f"no readable files under {roots}")
    return bytes(out[:size])


def smallfiles(count: int) -> BenchImage:
    layer, names = files_layer(
        ["/usr/share", "/usr/lib"], max_file=16 << 10, limit_bytes=1 << 40, limit_count=count
    )
    image = busybox_image().layer(layer, created_by=f"COPY {len(names)} small files")
    return BenchImage("smallfiles", f"busybox + {len(names)} small files (≤16 KiB) from /usr", image)


def bigfiles(size: int) -> BenchImage:
    """Four files: half compressible (machine binaries), half incompressible (seeded PRNG)."""
    quarter = size // 4
    rng = random.Random(20231114)
    compressible = repeated(["/usr/bin", "/usr/lib/x86_64-linux-gnu"], 2 * quarter)
    layer = (
        LayerBuilder()
        .dir("data/")
        .file("data/binaries-1", compressible[:quarter])
        .file("data/random-1", rng.randbytes(quarter))
        .file("data/binaries-2", compressible[quarter:])
        .file("data/random-2", rng.randbytes(quarter))
    )
    image = busybox_image().layer(layer, created_by="COPY data /data")
    return BenchImage(
        f"bigfiles-{size // MiB}", f"busybox + {size // MiB} MiB in 4 files (half compressible)", image
    )


def _mixed_layers(scale: float) -> list[tuple[LayerBuilder, str]]:
    """Application-image shaped layers: config, libraries, runtime, app, deletions, a patch."""
    etc, _ = files_layer(["/etc"], max_file=64 << 10, limit_bytes=int(4 * MiB * scale), limit_count=2000)
    libs, lib_names = files_layer(
        ["/usr/lib/x86_64-linux-gnu"], max_file=8 * MiB, limit_bytes=int(48 * MiB * scale), limit_count=5000
    )
    runtime, runtime_names = files_layer(
        ["/usr/lib/python3.11", "/usr/lib/python3"], max_file=1 * MiB,
        limit_bytes=int(40 * MiB * scale), limit_count=int(6000 * scale),
    )
    app, _ = files_layer(["/usr/bin"], max_file=4 * MiB, limit_bytes=int(24 * MiB * scale), limit_count=2000, prefix="app/")
    deletions = LayerBuilder()
    for name in lib_names[::7] + runtime_names[::11]:
        deletions.whiteout(name, uid=0, gid=0)
    opaque_dir = runtime_names[len(runtime_names) // 2].rsplit("/", 1)[0]
    deletions.opaque(opaque_dir).file(opaque_dir + "/replaced.txt", b"replaced the whole directory\n")
    patch = LayerBuilder().dir("etc/").file("etc/app.conf", b"listen = 8080\nworkers = 4\n" * 64)
    return [
        (etc, "COPY etc /etc"),
        (libs, "RUN apt-get install libraries"),
        (runtime, "RUN install the runtime"),
        (app, "COPY app /app"),
        (deletions, "RUN remove what is not needed"),
        (patch, "COPY app.conf /etc/app.conf"),
    ]


def mixed(scale: float) -> BenchImage:
    image = busybox_image()
    for layer, created_by in _mixed_layers(scale):
        image.layer(layer, created_by=created_by)
    return BenchImage("mixed", "8 gzip layers like an application image, with whiteouts and an opaque dir", image)


def mixed_zstd(scale: float) -> BenchImage:
    image = busybox_image("oci")
    for layer, created_by in _mixed_layers(scale):
        image.layer(layer, compression="zstd", created_by=created_by)
    return BenchImage(
        "mixed-zstd",
        "`mixed` with its 6 upper layers as zstd (OCI); dockerd 20.10 cannot pull zstd, so its column is the gzip twin",
        image,
        twin=image.gzip_twin(),
    )


PYTHON_STACK = ("python3", "python3-numpy")
MANY_LAYERS = 48


def debian_base() -> ImageBuilder:
    """One layer: the Debian minbase tree as mmdebstrap built it (see debian.py)."""
    return ImageBuilder().layer(debian.layer((), None), created_by=f"mmdebstrap --variant=minbase {debian.SUITE}")


def debian_minbase() -> BenchImage:
    return BenchImage("debian-minbase", f"a Debian {debian.SUITE} minbase root file system (mmdebstrap), 1 layer", debian_base())


def debian_python() -> BenchImage:
    """The minbase layer, then what installing python3 and numpy changed (the trees' difference)."""
    stack = debian.layer(PYTHON_STACK, ())
    image = debian_base().layer(stack, created_by="RUN apt-get install " + " ".join(PYTHON_STACK))
    return BenchImage(
        "debian-python",
        f"`debian-minbase` + a layer with {' and '.join(PYTHON_STACK)} as Debian packages install them",
        image,
    )


def manylayers(layers: int, scale: float) -> BenchImage:
    """busybox + `layers` layers of machine files, each step removing one file of the step before."""
    files = list(machine_files(["/usr/share", "/usr/lib/python3"], 1 << 20, int(64 * MiB * scale), 1 << 30))
    image = busybox_image()
    previous: list[str] = []
    for i, part in enumerate(split(files, layers)):
        layer, names = layer_of(part)
        if previous:
            layer.whiteout(previous[0], uid=0, gid=0)
        image.layer(layer, created_by=f"RUN step {i + 1}")
        previous = names
    return BenchImage(
        f"manylayers-{layers + 2}",
        f"busybox + {layers} layers of files from /usr, each removing a file of the one before",
        image,
    )


def shared_base(count: int, quick: bool) -> tuple[str, list[ImageBuilder]]:
    """`count` images over one base (Debian minbase when it can be built, else `mixed`'s layers),
    each adding its own application layer of machine files and a config file."""
    try:
        base, described = debian_base(), f"Debian {debian.SUITE} minbase"
    except RuntimeError:
        base, described = busybox_image(), "busybox + `mixed`'s layers"
        for layer, created_by in _mixed_layers(0.1 if quick else 0.5):
            base.layer(layer, created_by=created_by)
    per_image = (1 if quick else 4) * MiB
    files = list(machine_files(["/usr/lib/x86_64-linux-gnu"], per_image, count * per_image, 1 << 30))
    images = []
    for i, part in enumerate(split(files, count)):
        app, _ = layer_of(part, prefix=f"opt/app{i}/")
        config = LayerBuilder().dir("etc/").file(f"etc/app{i}.conf", b"instance = %d\n" % i)
        images.append(base.copy().layer(app, created_by=f"COPY app{i} /opt").layer(config, created_by="COPY conf"))
    return described, images


def tiny_images(count: int, layers: int) -> list[ImageBuilder]:
    """`count` images of `layers` small layers each, no layer shared: a big root, made fast."""
    images = []
    for i in range(count):
        image = ImageBuilder()
        for j in range(layers):
            image.layer(LayerBuilder().dir(f"i{i}/").file(f"i{i}/l{j}", b"image %d layer %d\n" % (i, j)))
        images.append(image)
    return images


def bench_images(quick: bool) -> dict[str, Callable[[], BenchImage]]:
    """The suite by name (built on demand): full sizes, or the same shapes at a fraction of the size.
    The Debian images raise RuntimeError when mmdebstrap cannot build their trees."""
    small, big, scale = (3000, (32, 96), 0.25) if quick else (30000, (128, 384), 1.0)
    return {
        "smallfiles": lambda: smallfiles(small),
        f"bigfiles-{big[0]}": lambda: bigfiles(big[0] * MiB),
        f"bigfiles-{big[1]}": lambda: bigfiles(big[1] * MiB),
        "mixed": lambda: mixed(scale),
        "mixed-zstd": lambda: mixed_zstd(scale),
        "debian-minbase": debian_minbase,
        "debian-python": debian_python,
        f"manylayers-{MANY_LAYERS + 2}": lambda: manylayers(MANY_LAYERS, scale),
    }
