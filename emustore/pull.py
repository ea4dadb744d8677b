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
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from emustore.digest import short_id
from emustore.errors import ManifestError
from emustore.fsutil import write_file
from emustore.imageconfig import parse_image_config
from emustore.layers.extract import OPAQUE_XATTR
from emustore.layers.layer_process import unpack_layer_forked
from emustore.layers.pipeline import MAX_EXPANSION, LayerResult, expansion_limit, unpack_layer
from emustore.layers.unprivileged import RECORD_NAME, ROOTLESS_OPAQUE_XATTR
from emustore.platform import Platform, parse_platform
from emustore.progress import Reporter, SilentReporter
from emustore.reference import Reference, parse_reference
from emustore.registry.options import RegistryOptions
from emustore.sources.base import ImageSource, ResolvedImage
from emustore.sources.registry import RegistrySource
from emustore.stores.docker.layerdb import chain_ids
from emustore.stores.docker.ownership import check_not_owned
from emustore.stores.docker.staging import StagingSet
from emustore.stores.docker.store import DockerStore, StagedLayer

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
class _LayerOptions:
    max_expansion: int
    opaque_xattr: str


@dataclass(frozen=True)
class LoadRegistration:
    """Record the image as `docker load` does instead: only these tags, no distribution metadata,
    layers found by chain id, a repeated layer registered as an identical re-read."""

    tags: tuple[Reference, ...] = ()


@dataclass
class _Plan:
    """Which positions already exist, and for the rest, which blob each position takes."""

    existing: int  # positions [0, existing) are "Already exists"
    first_of: dict[str, int]  # blob digest → first position to download it


def pull(
    reference: str | Reference,
    root: str | os.PathLike[str],
    platform: str | Platform | None = None,
    reporter: Reporter | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    source: ImageSource | None = None,
    force: bool = False,
    max_expansion: int = MAX_EXPANSION,
    load: LoadRegistration | None = None,
    registry_options: RegistryOptions | None = None,
    blob_cache: str | os.PathLike[str] | None = None,
    rootless: bool = False,
) -> PullResult:
    """Pull one image into a Docker 20.10 overlay2 data root, like `docker pull`.

    The image comes from the registry the reference names, unless another `source` is given.
    A root a running dockerd owns is refused unless `force`; a layer expanding more than
    `max_expansion` times the blob bytes received (and past 1 GiB) is refused as a bomb (0: no limit).
    With `load`, the image is recorded as `docker load` records it (see LoadRegistration).
    `registry_options` (mirrors, TLS, credentials, retries) apply to the default registry source.
    A `blob_cache` directory keeps the blobs for the next pulls, into this or any other root.
    Without root, what cannot be written is recorded per layer (see layers/unprivileged.py);
    `rootless` marks opaque dirs with user.overlay.opaque, as overlayfs with userxattr reads them.
    """
    check_not_owned(root, force)
    ref = reference if isinstance(reference, Reference) else parse_reference(reference)
    spec = parse_platform(platform) if isinstance(platform, str) else platform
    report = reporter or SilentReporter()
    store = DockerStore(Path(root))
    options = _LayerOptions(max_expansion, ROOTLESS_OPAQUE_XATTR if rootless else OPAQUE_XATTR)
    opened = source
    old_umask = os.umask(DOCKER_UMASK)
    try:
        # the root is checked (and dead writers' staging removed) before anything is downloaded
        with store.staging("pull" if load is None else "load") as staging:
            # a config the root already holds is not downloaded again (warm pull)
            opened = opened or RegistrySource(ref, spec, options=registry_options, config_stores=[store.images])
            if blob_cache is not None:
                from emustore.sources.cache import BlobCache, CachingSource  # only when asked for: a faster start

                opened = CachingSource(opened, BlobCache(blob_cache))
            return _pull(ref, opened, store, staging, report, concurrency, options, load)
    except BaseException:
        store.layout.remove_empty_staging()
        raise
    finally:
        if opened is not None:
            opened.close()
        os.umask(old_umask)


def _pull(
    ref: Reference,
    source: ImageSource,
    store: DockerStore,
    staging: StagingSet,
    report: Reporter,
    concurrency: int,
    options: _LayerOptions,
    load: LoadRegistration | None = None,
) -> PullResult:
    report.pulling(ref)
    image = source.resolve()
    config = parse_image_config(image.config_bytes)
    if len(config.diff_ids) != len(image.layers):
        raise ManifestError("layers from manifest don't match image configuration")
    image_id = image.config_digest
    chains = chain_ids(config.diff_ids)
    keys = [image.reference.digest_key(image.manifest_digest)]
    if image.reference.tag and not image.reference.digest:
        keys.append(image.reference.tag_key())
    references = [(image.reference.familiar_name, key, image_id) for key in keys]
    if load is not None:
        references = [(tag.familiar_name, tag.tag_key(), image_id) for tag in load.tags]
    present = store.has_image(image_id, chains[-1]) if chains else store.images.get(image_id) is not None
    if present:
        with store.lock():
            store.layout.prepare_store(distribution=load is None)
            store.references.add(references)
        report.done(ref, image.manifest_digest, downloaded=False)
        return PullResult(ref, image_id, image.manifest_digest, downloaded=False)

    plan = _plan(image, config.diff_ids, chains, store, by_distribution=load is None)
    for i in range(plan.existing):
        report.layer(image.layers[i].digest, "Already exists")
    staged: dict[str, StagedLayer] = {}  # what is left of them on failure goes with the staging set
    results = _download(
        image, source, store, staging, plan, config.diff_ids, chains, staged, report, concurrency, options
    )
    with store.lock(), _interrupts_deferred():
        _register(image, store, staging, plan, config.diff_ids, chains, staged, results, report, load is None)
        store.images.put(image.config_bytes)
        store.references.add(references)
    report.done(ref, image.manifest_digest, downloaded=True)
    unwritten = [r.unwritable.counts() for r in results.values() if r.unwritable is not None and r.unwritable.lost()]
    return PullResult(
        ref, image_id, image.manifest_digest, downloaded=True,
        unwritten=sum(unwritten, Counter()), unwritten_layers=len(unwritten),
    )


def _plan(
    image: ResolvedImage, diff_ids: list[str], chains: list[str], store: DockerStore, by_distribution: bool = True
) -> _Plan:
    """dockerd's skip rule: bottom-up, a layer exists when its blob maps to its diff id and chain
    (a load, not `by_distribution`, looks at the chain only)."""
    existing = 0
    for i, desc in enumerate(image.layers):
        known = not by_distribution or store.distribution.diff_id_for(desc.digest) == diff_ids[i]
        if not known or not store.layers.exists(chains[i]):
            break
        existing += 1
    first_of: dict[str, int] = {}
    for i in range(existing, len(image.layers)):
        first_of.setdefault(image.layers[i].digest, i)
    return _Plan(existing, first_of)


def _download(
    image: ResolvedImage,
    source: ImageSource,
    store: DockerStore,
    staging: StagingSet,
    plan: _Plan,
    diff_ids: list[str],
    chains: list[str],
    staged: dict[str, StagedLayer],
    report: Reporter,
    concurrency: int,
    options: _LayerOptions,
) -> dict[str, LayerResult]:
    """Download, verify and extract every needed blob once, several at a time, and prepare its
    layerdb record (DockerStore.prepare_record).

    When one job fails (or the main thread is interrupted) the others stop at their next chunk."""
    stop = threading.Event()

    def until_stopped(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if stop.is_set():
                raise _Stopped()
            yield chunk

    def job(position: int) -> LayerResult:
        desc = image.layers[position]
        layer = staged[desc.digest]
        # a small blob is unpacked right here: forking its two processes would cost more
        forked = desc.size > IN_THREAD_MAX
        with source.open_layer(desc) as blob:
            result = (unpack_layer_forked if forked else unpack_layer)(
                until_stopped(blob.iter_chunks()),
                desc.digest,
                str(layer.diff),
                str(layer.tar_split),
                on_bytes=lambda n: report.progress(desc.digest, n, desc.size),
                expansion=expansion_limit(options.max_expansion),
                file_reads=getattr(blob, "file_reads", False),
                opaque_xattr=options.opaque_xattr,
                separate_process=forked,
            )
        if result.unwritable is not None and result.unwritable.lost():
            write_file(layer.dir / RECORD_NAME, result.unwritable.to_json(), 0o644)
        if result.diff_id != diff_ids[position]:
            raise ManifestError(
                "layers from manifest don't match image configuration: layer %s has diff id %s, config says %s"
                % (short_id(desc.digest), result.diff_id, diff_ids[position])
            )
        parent = chains[position - 1] if position else None
        store.prepare_record(layer, chains[position], result.diff_id, parent, result.size)
        report.layer(desc.digest, "Download complete")
        return result

    for digest in plan.first_of:
        staged[digest] = store.stage(staging)
        report.layer(digest, "Pulling fs layer")
    futures: dict[str, Future[LayerResult]] = {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="layer") as pool:
        for digest, position in plan.first_of.items():
            futures[digest] = pool.submit(job, position)
        try:
            wait(futures.values(), return_when=FIRST_EXCEPTION)
            for future in futures.values():
                if future.done() and future.exception() is not None:
                    future.result()  # the first failure, raised before waiting on slower jobs
            return {digest: future.result() for digest, future in futures.items()}
        except BaseException:
            stop.set()
            for future in futures.values():
                future.cancel()
            raise


class _Stopped(Exception):
    """Raised inside a layer job to end it early because the pull is failing."""


def _register(
    image: ResolvedImage,
    store: DockerStore,
    staging: StagingSet,
    plan: _Plan,
    diff_ids: list[str],
    chains: list[str],
    staged: dict[str, StagedLayer],
    results: dict[str, LayerResult],
    report: Reporter,
    record: bool = True,
) -> None:
    """Chain order, under the lock: layers, then (if `record`) their distribution metadata."""
    store.layout.prepare_store(distribution=record)
    for i in range(plan.existing, len(image.layers)):
        digest = image.layers[i].digest
        parent = chains[i - 1] if i else None
        repeated = plan.first_of[digest] != i  # a blob already registered lower: copied, as dockerd does
        if not repeated:
            layer = staged[digest]
        else:
            first = store.layers.read(chains[plan.first_of[digest]])
            layer = store.stage_copy(
                staging,
                store.overlay2.diff_dir(first.cache_id),
                store.layers.path(first.chain_id) / "tar-split.json.gz",
                reread=not record,
            )
        if repeated:  # the downloaded ones were prepared by their jobs
            store.prepare_record(layer, chains[i], diff_ids[i], parent, results[digest].size)
        store.register_layer(layer, chains[i], parent)
        report.layer(digest, "Pull complete")
    if record:
        store.distribution.record_pulls(
            [(diff_ids[i], desc.digest, image.repository) for i, desc in enumerate(image.layers)]
        )


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
