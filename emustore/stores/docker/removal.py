"""Untagging and deleting images like dockerd 20.10 (daemon/images/image_delete.go, image_prune.go).

References go first; an image is deleted only when none remain, and each of its layers only
when no other image (or container layer) sits on its chain. A layer is deleted as dockerd
does it: its layerdb dir is renamed to `<hex>-<random>-removing`, the overlay2 dir and its
`l/` link are removed, then the renamed dir. Distribution metadata stays (dockerd keeps it).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

from emustore.digest import PREFIX, hex_of
from emustore.errors import EmustoreError, NoSuchImage
from emustore.reference import Reference, parse_reference
from emustore.stores.docker.goconfig import rfc3339nano
from emustore.stores.docker.catalog import Catalog, CatalogImage, StoredReference, references_in, require_data_root
from emustore.stores.docker.overlay2 import new_cache_id
from emustore.stores.docker.references import lookup_key
from emustore.stores.docker.store import DockerStore

_DEPENDENT_CHILD, _RUNNING, _ACTIVE_REFERENCE, _STOPPED = 1, 2, 4, 8
_HARD = _DEPENDENT_CHILD | _RUNNING
_SOFT = _ACTIVE_REFERENCE | _STOPPED


class ImageConflict(EmustoreError):
    """The image is in use (containers, child images, other references); `hard` ones ignore -f."""

    def __init__(self, message: str, hard: bool = False, used: bool = False) -> None:
        super().__init__(message)
        self.hard = hard
        self.used = used


@dataclass(frozen=True)
class DeleteRecord:
    """One line of `docker rmi`: ("Untagged", reference) or ("Deleted", image or chain id)."""

    action: str
    value: str

    def __str__(self) -> str:
        return "%s: %s" % (self.action, self.value)


@dataclass
class PruneReport:
    records: list[DeleteRecord] = field(default_factory=list)
    reclaimed: int = 0  # bytes: the `size` of every deleted layer


def tag_image(root: str | os.PathLike[str], source: str, target: str) -> str:
    """`docker tag SOURCE TARGET`: add the tag (moving it if it named another image) and
    record imagedb/metadata/<id>/lastUpdated; returns the familiar tag."""
    ref = parse_reference(target, default_tag=False)
    if ref.digest is not None:
        raise EmustoreError("refusing to create a tag with a digest reference")
    ref = replace(ref, tag=ref.tag or "latest")
    store = DockerStore(require_data_root(root).root)
    with store.lock():
        catalog = Catalog(store.layout.root)
        image = catalog.resolve(source)
        repos = catalog.repositories
        if repos.get(ref.familiar_name, {}).get(ref.tag_key()) != image.id:
            repos.setdefault(ref.familiar_name, {})[ref.tag_key()] = image.id
            store.references.save(repos)
        store.images.set_last_updated(image.id, rfc3339nano(time.time_ns()))
    return str(ref)


def remove_image(root: str | os.PathLike[str], text: str, force: bool = False) -> list[DeleteRecord]:
    """`docker rmi [-f] TEXT`: the records, or ImageConflict/NoSuchImage with docker's message."""
    store = DockerStore(require_data_root(root).root)
    with store.lock():
        return _Deleter(store).delete(text, force, prune=True)


def prune_images(root: str | os.PathLike[str], all_images: bool = False) -> PruneReport:
    """`docker image prune [-a]`: dangling (untagged) images, or every image without a container."""
    store = DockerStore(require_data_root(root).root)
    report = PruneReport()
    with store.lock():
        catalog = Catalog(store.layout.root)
        sizes = {chain: layer.size for chain, layer in catalog.layers().items()}
        candidates = catalog.images() if all_images else catalog.heads()
        current = catalog  # the root as it is now: read again after each deletion
        for image in candidates:
            if not image.references and catalog.children(image.id):
                continue
            refs = current.references_of(image.id)
            if refs and not all_images and any(not r.is_digest for r in refs):
                continue
            for text in [r.reference.full_string() for r in refs] or [hex_of(image.id)]:
                try:
                    report.records += _Deleter(store).delete(text, force=False, prune=True)
                except EmustoreError:
                    continue  # conflicts and images already gone are skipped, as dockerd does
                current = Catalog(store.layout.root)
    report.reclaimed = sum(sizes.get(r.value, 0) for r in report.records if r.action == "Deleted")
    return report


class _Deleter:
    """One ImageDelete call on a fresh read of the root (the caller holds the lock)."""

    def __init__(self, store: DockerStore) -> None:
        self.store = store
        self.catalog = Catalog(store.layout.root)
        self.repos = self.catalog.repositories
        self.deleted: set[str] = set()
        self.records: list[DeleteRecord] = []

    def refs(self, image_id: str) -> tuple[StoredReference, ...]:
        return references_in(self.repos, image_id)

    def delete(self, text: str, force: bool, prune: bool) -> list[DeleteRecord]:
        image = self.catalog.resolve(text)
        refs = self.refs(image.id)
        if not _is_id_prefix(image.id, text):
            if not force and _is_single_reference(refs):
                user = next((c for c in self.catalog.containers() if c.image_id == image.id), None)
                if user is not None:
                    raise ImageConflict(
                        'conflict: unable to remove repository reference "%s" (must force) - '
                        "container %s is using its referenced image %s" % (text, user.short_id, image.short_id)
                    )
            given = parse_reference(text)
            self.untag(given)
            refs = self.refs(image.id)
            if given.digest is None and not any(not r.is_digest and r.reference.name == given.name for r in refs):
                for ref in refs:
                    if ref.is_digest and ref.reference.name == given.name:
                        self.untag(ref.reference)
                refs = self.refs(image.id)
            if refs:
                return self.records
            self.delete_helper(image, force, prune, quiet=True)
        else:
            if _is_single_reference(refs):
                mask = _HARD | (0 if force else _SOFT & ~_ACTIVE_REFERENCE)
                conflict = self.conflict(image, mask)
                if conflict is not None:
                    raise conflict
                for ref in refs:
                    self.untag(ref.reference)
            self.delete_helper(image, force, prune, quiet=False)
        return self.records

    def untag(self, ref: Reference) -> None:
        key = lookup_key(ref)
        repository = self.repos.get(ref.familiar_name, {})
        if key not in repository:
            raise NoSuchImage(ref)
        del repository[key]
        if not repository:
            del self.repos[ref.familiar_name]
        self.store.references.save(self.repos)
        self.records.append(DeleteRecord("Untagged", str(ref)))

    def conflict(self, image: CatalogImage, mask: int) -> ImageConflict | None:
        def fail(reason: str, hard: bool, used: bool) -> ImageConflict:
            forced = "cannot be forced" if hard else "must be forced"
            return ImageConflict("conflict: unable to delete %s (%s) - %s" % (image.short_id, forced, reason), hard, used)

        users = [c for c in self.catalog.containers() if c.image_id == image.id]
        if mask & _DEPENDENT_CHILD and self.children(image.id):
            return fail("image has dependent child images", True, False)
        running = next((c for c in users if c.running), None)
        if mask & _RUNNING and running is not None:
            return fail("image is being used by running container %s" % running.short_id, True, True)
        if mask & _ACTIVE_REFERENCE and self.refs(image.id):
            return fail("image is referenced in multiple repositories", False, False)
        stopped = next((c for c in users if not c.running), None)
        if mask & _STOPPED and stopped is not None:
            return fail("image is being used by stopped container %s" % stopped.short_id, False, True)
        return None

    def children(self, image_id: str) -> list[CatalogImage]:
        return [c for c in self.catalog.children(image_id) if c.id not in self.deleted]

    def delete_helper(self, image: CatalogImage, force: bool, prune: bool, quiet: bool) -> None:
        conflict = self.conflict(image, _HARD | (0 if force else _SOFT))
        if conflict is not None:
            dangling = not self.refs(image.id) and not self.children(image.id)
            if quiet and (not dangling or conflict.used):
                return
            raise conflict
        for ref in self.refs(image.id):
            self.untag(ref.reference)
        self.remove_image_files(image)
        self.records.append(DeleteRecord("Deleted", image.id))
        for chain_id in self.release_layers(image):
            self.records.append(DeleteRecord("Deleted", chain_id))
        parent = self.catalog.image(image.parent) if image.parent else None
        if prune and parent is not None and parent.id not in self.deleted:
            self.delete_helper(parent, force=False, prune=True, quiet=True)

    def remove_image_files(self, image: CatalogImage) -> None:
        for child in self.children(image.id):
            self.store.images.remove_parent(child.id)
        self.deleted.add(image.id)
        self.store.images.delete(image.id)

    def release_layers(self, image: CatalogImage) -> list[str]:
        """Delete the image's layers, top down, until one is still used; their chain ids."""
        if image.top_chain_id is None:
            return []
        holders = [i.top_chain_id for i in self.catalog.images() if i.id not in self.deleted and i.top_chain_id]
        holders += [p for p in self.catalog.mount_parents() if p in self.catalog.layers()]
        used = {layer.chain_id for holder in holders for layer in self.catalog.layer_chain(holder)}
        removed = []
        for layer in self.catalog.layer_chain(image.top_chain_id):
            if layer.chain_id in used:
                break
            self.delete_layer(layer.chain_id, layer.cache_id)
            removed.append(layer.chain_id)
        return removed

    def delete_layer(self, chain_id: str, cache_id: str) -> None:
        self.store.layers.remove(chain_id, new_cache_id(), lambda: self.store.overlay2.remove(cache_id))


def _is_id_prefix(image_id: str, text: str) -> bool:
    return image_id.startswith(PREFIX + text) or image_id.startswith(text)


def _is_single_reference(refs: tuple[StoredReference, ...]) -> bool:
    """At most one tag, and every digest reference in that tag's repository (dockerd's rule)."""
    if len(refs) <= 1:
        return len(refs) == 1
    single: StoredReference | None = None
    digest_repos = set()
    for ref in refs:
        if ref.is_digest:
            digest_repos.add(ref.reference.name)
        elif single is None:
            single = ref
        else:
            return False
    single = single or refs[0]
    return len(digest_repos) == 1 and single.reference.name in digest_repos
