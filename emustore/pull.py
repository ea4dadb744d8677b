"""Pull orchestration: resolve → plan → download and extract in parallel → verify → register.

Nothing becomes visible in the root until every layer was downloaded, its blob digest and
diff id verified against the manifest and the config; registration then happens in chain
order under the root's lock, followed by the image config and the references.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emustore.digest import short_id
from emustore.engines import DEFAULT, Dialect, requested_dialect
from emustore.stores.docker.dialect import chosen_dialect
from emustore.errors import EmustoreError, ManifestError, UsageError
from emustore.fsutil import write_file
from emustore.imageconfig import parse_image_config
from emustore.layers.expansion import MAX_EXPANSION, expansion_limit
from emustore.layers.unprivileged import RECORD_NAME, ROOTLESS_OPAQUE_XATTR
from emustore.manifest import Descriptor
from emustore.platform import Platform, parse_platform
from emustore.progress import Reporter, SilentReporter
from emustore.reference import Reference, parse_reference
from emustore.sources.base import ImageSource, ResolvedImage
from emustore.stores.docker.layerdb import chain_ids
from emustore.stores.destination import Destination, Staged, Staging

if TYPE_CHECKING:  # the pull machinery is imported when a pull runs: the read commands start faster
    from emustore.layers.pipeline import LayerResult, UnpackOptions
    from emustore.registry.options import RegistryOptions

STORES = ("docker", "containerd")
DEFAULT_CONCURRENCY = 4
IN_THREAD_MAX = 1 << 20  # blobs up to this size are unpacked in the pull's own thread
DOCKER_UMASK = 0o022


@dataclass(frozen=True)
class PullResult:
    reference: Reference
    image_id: str
    manifest_digest: str
    downloaded: bool
    unwritten: Counter[str] = field(default_factory=Counter)  # without root: entries per kind not written
    unwritten_layers: int = 0


@dataclass(frozen=True)
class PullOptions:
    """How a pull runs: the CLI, emustore.api and the pytest plugin each build this one value."""

    platform: str | Platform | None = None  # the host's when None
    concurrency: int = DEFAULT_CONCURRENCY  # layers downloaded and unpacked at once
    force: bool = False  # write into a root a running dockerd owns
    max_expansion: int = MAX_EXPANSION  # a layer expanding more (and past 1 GiB) is a bomb; 0: no limit
    rootless: bool = False  # opaque dirs marked with user.overlay.opaque (overlayfs userxattr)
    registry: RegistryOptions | None = None  # mirrors, TLS, credentials, retries (the registry source)
    blob_cache: str | os.PathLike[str] | None = None  # a directory keeping blobs for the next pulls

    engine: str | Dialect | None = None  # the engine whose dialect is written: $EMUSTORE_ENGINE, else the root's
    store: str = "docker"  # "docker": an overlay2 data root; "containerd": containerd's image store
    namespace: str = "default"  # the containerd namespace written ("moby": Docker's, "k8s.io": kubelet's)

    def parsed_platform(self) -> Platform | None:
        return parse_platform(self.platform) if isinstance(self.platform, str) else self.platform

    def __post_init__(self) -> None:
        if not isinstance(self.engine, Dialect):  # checked (and $EMUSTORE_ENGINE read) once, up front
            object.__setattr__(self, "engine", requested_dialect(self.engine))
        if self.store not in STORES:
            raise UsageError("unknown store %r: expected one of %s" % (self.store, ", ".join(STORES)))

    def for_root(self, root: str | os.PathLike[str]) -> PullOptions:
        """These options with the dialect settled: the one asked for, else (a Docker root) the
        root's: 20.10 for a root no engine 26 or later has used (stores/docker/dialect.py)."""
        if self.store != "docker":
            return replace(self, engine=self.dialect)
        return replace(self, engine=chosen_dialect(self.engine, root))

    @property
    def dialect(self) -> Dialect:
        """The dialect asked for; 20.10 when none was (`for_root` settles it by the root first)."""
        return self.engine if isinstance(self.engine, Dialect) else DEFAULT

    def destination(self, root: str | os.PathLike[str]) -> Destination[Any, Any]:
        """The store at `root` these options write, in the dialect: a Docker overlay2 data root, or
        containerd's image store (namespace `namespace`)."""
        if self.store == "containerd":
            from emustore.stores.containerd.store import ContainerdStore

            return ContainerdStore(Path(root), self.dialect, self.namespace)
        from emustore.stores.docker.store import DockerStore

        return DockerStore(Path(root), self.dialect)

    def unpacking(self) -> UnpackOptions:
        """How each layer is unpacked (per blob, `file_reads` and `may_fork` are set as it comes)."""
        from emustore.layers.extract import OPAQUE_XATTR
        from emustore.layers.pipeline import UnpackOptions

        return UnpackOptions(
            expansion=expansion_limit(self.max_expansion),
            opaque_xattr=ROOTLESS_OPAQUE_XATTR if self.rootless else OPAQUE_XATTR,
            dialect=self.dialect,
        )


class Registration:
    """How the image is recorded, as `docker pull` does: under its tag and digest, its layers
    found (and recorded) by blob digest in the distribution metadata."""

    staging_kind = "pull"
    by_distribution = True

    def references(self, image: ResolvedImage) -> list[tuple[str, str, str]]:
        """(familiar repository, repositories.json key, image id) to add."""
        ref = image.reference
        keys = [ref.digest_key(image.manifest_digest)]
        if ref.tag and not ref.digest:
            keys.append(ref.tag_key())
        return [(ref.familiar_name, key, image.config_digest) for key in keys]


PULL = Registration()


@dataclass(frozen=True)
class LoadRegistration(Registration):
    """Record the image as `docker load` does instead: only these tags, no distribution metadata,
    layers found by chain id, a repeated layer registered as an identical re-read."""

    tags: tuple[Reference, ...] = ()
    staging_kind = "load"
    by_distribution = False

    def references(self, image: ResolvedImage) -> list[tuple[str, str, str]]:
        return [(tag.familiar_name, tag.tag_key(), image.config_digest) for tag in self.tags]


@dataclass
class _Layer:
    """One position of the image, from its blob to its registered layer."""

    blob: Descriptor
    diff_id: str
    chain_id: str
    parent: str | None  # the chain id below
    exists: bool = False  # already in the root ("Already exists")
    first: _Layer | None = None  # a lower position with the same blob (then this one is a copy of it)
    staged: Staged | None = None  # set when this position downloads its blob
    result: LayerResult | None = None


def pull(
    reference: str | Reference,
    root: str | os.PathLike[str],
    options: PullOptions | None = None,
    reporter: Reporter | None = None,
    source: ImageSource | None = None,
    registration: Registration = PULL,
) -> PullResult:
    """Pull one image into a store (a Docker data root, or containerd's with `options.store`), like `docker pull`.

    The image comes from the registry the reference names, unless another `source` is given.
    A root a running dockerd owns is refused unless `options.force`. With a LoadRegistration the
    image is recorded as `docker load` records it. Without root, what cannot be written is
    recorded per layer (see layers/unprivileged.py).
    """
    options = (options or PullOptions()).for_root(root)
    opened = source
    old_umask = os.umask(DOCKER_UMASK)
    store: Destination[Any, Any] | None = None
    try:
        store = options.destination(root)
        store.refuse_if_owned(options.force)
        ref = reference if isinstance(reference, Reference) else parse_reference(reference)
        platform = options.parsed_platform()
        # the root is checked (and dead writers' staging removed) before anything is downloaded
        with store.staging(registration.staging_kind) as staging:
            # a config the root already holds is not downloaded again (warm pull)
            from emustore.sources.registry import RegistrySource

            opened = opened or RegistrySource(
                ref, platform, options=options.registry, config_stores=[store.configs],
                every_manifest=store.keeps_every_manifest,
            )
            if options.blob_cache is not None:
                from emustore.sources.cache import BlobCache, CachingSource  # only when asked for: a faster start

                opened = CachingSource(opened, BlobCache(options.blob_cache))
            return _pull(ref, opened, store, staging, reporter or SilentReporter(), options, registration)
    except BaseException:
        if store is not None:
            store.discard_staging()
        raise
    finally:
        if opened is not None:
            opened.close()
        os.umask(old_umask)


@dataclass(frozen=True)
class PullFailure:
    """One image of `pull_all` that could not be pulled, and why (the others went on)."""

    reference: str
    error: EmustoreError


def pull_all(
    references: Sequence[str | Reference],
    root: str | os.PathLike[str],
    options: PullOptions | None = None,
    reporter: Reporter | None = None,
) -> Iterator[PullResult | PullFailure]:
    """Pull each reference in turn into one root, as `docker pull`s one after another would, in
    one process: an image finds the layers and configs the ones before registered ("Already
    exists"), so a blob they share is downloaded once. An image that fails does not stop the
    next (a bad reference neither); its failure is yielded in its place."""
    for reference in references:
        try:
            yield pull(reference, root, options, reporter)
        except EmustoreError as exc:
            yield PullFailure(str(reference), exc)


def _pull(
    ref: Reference,
    source: ImageSource,
    store: Destination[Any, Any],
    staging: Staging,
    report: Reporter,
    options: PullOptions,
    registration: Registration,
) -> PullResult:
    report.pulling(ref)
    image = source.resolve()
    config = parse_image_config(image.config_bytes)
    if len(config.diff_ids) != len(image.layers):
        raise ManifestError("layers from manifest don't match image configuration")
    image_id = image.config_digest
    chains = chain_ids(config.diff_ids)
    references = registration.references(image)
    if store.has_image(image_id, chains[-1] if chains else None):
        with store.committing(registration.by_distribution):
            store.tag(references, image)
        report.done(ref, image.manifest_digest, downloaded=False)
        return PullResult(ref, image_id, image.manifest_digest, downloaded=False)

    layers = _plan(image, config.diff_ids, chains, store, registration.by_distribution)
    for layer in layers:
        if layer.exists:
            report.layer(layer.blob.digest, "Already exists")
    downloads = [layer for layer in layers if not layer.exists and layer.first is None]
    _download(downloads, source, store, staging, report, options)
    with store.committing(registration.by_distribution), _interrupts_deferred():
        _register(image, layers, store, staging, report, registration)
        store.put_image(image)
        store.tag(references, image)
    report.done(ref, image.manifest_digest, downloaded=True)
    unwritten = [
        layer.result.unwritable.counts()
        for layer in downloads
        if layer.result is not None and layer.result.unwritable is not None and layer.result.unwritable.lost()
    ]
    return PullResult(
        ref, image_id, image.manifest_digest, downloaded=True,
        unwritten=sum(unwritten, Counter()), unwritten_layers=len(unwritten),
    )


def _plan(
    image: ResolvedImage, diff_ids: list[str], chains: list[str], store: Destination[Any, Any], by_distribution: bool
) -> list[_Layer]:
    """The image's layers, bottom-up, with dockerd's skip rule: a layer exists when its blob maps
    to its diff id and its chain is there (a load, not `by_distribution`, looks at the chain only);
    above the first that does not, each blob is downloaded once, at its lowest position."""
    layers: list[_Layer] = []
    first_of: dict[str, _Layer] = {}
    for i, desc in enumerate(image.layers):
        layer = _Layer(desc, diff_ids[i], chains[i], chains[i - 1] if i else None)
        if not first_of:  # every layer below exists
            layer.exists = store.has_layer(chains[i], diff_ids[i], desc.digest, by_distribution)
        if not layer.exists:
            layer.first = first_of.get(desc.digest)
            first_of.setdefault(desc.digest, layer)
        layers.append(layer)
    return layers


def _download(
    downloads: list[_Layer],
    source: ImageSource,
    store: Destination[Any, Any],
    staging: Staging,
    report: Reporter,
    options: PullOptions,
) -> None:
    """Download, verify and extract every needed blob once, several at a time, and prepare its
    record (Destination.prepare_layer); each layer gets its `staged` dir and `result`.

    When one job fails (or the main thread is interrupted) the others stop at their next chunk."""
    stop = threading.Event()
    unpacking = store.unpacking(options.unpacking())

    def until_stopped(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if stop.is_set():
                raise _Stopped()
            yield chunk

    from emustore.layers.layer_process import unpack_layer_forked
    from emustore.layers.pipeline import unpack_layer

    def job(layer: _Layer) -> None:
        desc, staged = layer.blob, layer.staged
        assert staged is not None
        # a small blob is unpacked right here: forking its two processes would cost more
        may_fork = desc.size > IN_THREAD_MAX
        with source.open_layer(desc) as blob:
            result = (unpack_layer_forked if may_fork else unpack_layer)(
                until_stopped(blob.iter_chunks()),
                desc.digest,
                str(staged.diff),
                None if staged.tar_split is None else str(staged.tar_split),
                replace(unpacking, file_reads=blob.file_reads, may_fork=may_fork),
                on_bytes=lambda n: report.progress(desc.digest, n, desc.size),
                blob_path=None if staged.blob is None else str(staged.blob),
            )
        if result.unwritable is not None and result.unwritable.lost():
            write_file(staged.dir / RECORD_NAME, result.unwritable.to_json(), 0o644)
        if result.diff_id != layer.diff_id:
            raise ManifestError(
                "layers from manifest don't match image configuration: layer %s has diff id %s, config says %s"
                % (short_id(desc.digest), result.diff_id, layer.diff_id)
            )
        store.prepare_layer(staged, layer.chain_id, result.diff_id, layer.parent, result.size, desc.digest)
        layer.result = result
        report.layer(desc.digest, "Download complete")

    for layer in downloads:  # what is left of them on failure goes with the staging set
        layer.staged = store.stage(staging)
        report.layer(layer.blob.digest, "Pulling fs layer")
    futures: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=max(1, options.concurrency), thread_name_prefix="layer") as pool:
        for layer in downloads:
            futures.append(pool.submit(job, layer))
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future.done() and future.exception() is not None:
                    future.result()  # the first failure, raised before waiting on slower jobs
            for future in futures:
                future.result()
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            raise


class _Stopped(Exception):
    """Raised inside a layer job to end it early because the pull is failing."""


def _register(
    image: ResolvedImage,
    layers: list[_Layer],
    store: Destination[Any, Any],
    staging: Staging,
    report: Reporter,
    registration: Registration,
) -> None:
    """Chain order, under the lock: layers, then (for a pull) where their blobs came from."""
    for layer in layers:
        if layer.exists:
            continue
        if layer.first is None:  # downloaded: its job prepared the record
            staged = layer.staged
            assert staged is not None
        else:  # a blob already registered lower: copied, as dockerd does
            staged = store.stage_repeat(staging, layer.first.chain_id, reread=not registration.by_distribution)
            assert layer.first.result is not None
            store.prepare_layer(
                staged, layer.chain_id, layer.diff_id, layer.parent, layer.first.result.size, layer.blob.digest
            )
        store.commit_layer(staged, layer.chain_id, layer.parent)
        report.layer(layer.blob.digest, "Pull complete")
    if registration.by_distribution:
        store.record_blobs([(layer.diff_id, layer.blob.digest, image.repository) for layer in layers])


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ctrl-C waits until the block ends (registration is short and must not stop half-way)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received and callable(previous):
        previous(signal.SIGINT, None)
