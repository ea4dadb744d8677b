"""Index checks: imagedb configs, repositories.json and the distribution metadata."""

from __future__ import annotations

import json

from emustore.errors import EmustoreError
from emustore.digest import Digest, is_digest, is_hex64
from emustore.fsck.findings import Findings, listdir
from emustore.fsutil import TEMP_PREFIX
from emustore.fsck.layers import loadable
from emustore.stores.docker.layerdb import LayerRecord
from emustore.imageconfig import parse_image_config
from emustore.stores.docker.layerdb import chain_ids
from emustore.stores.docker.store import DockerStore


def check_imagedb(store: DockerStore, layers: dict[str, LayerRecord], found: Findings) -> set[str]:
    """Image ids dockerd would list: the config verifies and its top layer loads."""
    images: set[str] = set()
    content = store.layout.imagedb_content
    for entry in listdir(content):
        path = content / entry
        if entry.startswith(TEMP_PREFIX):
            continue  # reported with the other leftovers
        if not is_hex64(entry):
            found.report(path, "not an image config (name must be 64 hex digits); dockerd ignores it")
            continue
        found.modes(path, {".": 0o600})
        try:
            data = path.read_bytes()
        except OSError as exc:
            found.report(path, "unreadable: %s" % exc.strerror)
            continue
        if Digest.of_bytes(data).hex != entry:
            found.report(path, "content does not hash to its name; dockerd hides this image")
            continue
        try:
            diff_ids = parse_image_config(data).diff_ids
        except EmustoreError as exc:
            found.report(path, str(exc))
            continue
        if diff_ids and not loadable(chain_ids(diff_ids)[-1], layers):
            found.report(path, "top layer %s is not a loadable layer; dockerd hides this image" % chain_ids(diff_ids)[-1])
            continue
        images.add(Digest.from_hex(entry))
    for entry in listdir(store.layout.imagedb_metadata):
        if not (content / entry).is_file():
            found.report(store.layout.imagedb_metadata / entry, "metadata of an image that does not exist")
    return images


def check_repositories(store: DockerStore, images: set[str], found: Findings) -> None:
    """repositories.json parses (else dockerd does not start) and names images that exist."""
    path = store.layout.repositories_json
    raw = found.read(path, required=False)  # a missing file is created empty by dockerd
    if raw is None:
        return
    try:
        repos = json.loads(raw)["Repositories"]
        if not isinstance(repos, dict) or not all(isinstance(refs, dict) for refs in repos.values()):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        found.report(path, "malformed; dockerd would not start on this root")
        return
    found.modes(path, {".": 0o600})
    for repository, refs in sorted(repos.items()):
        for key, image_id in sorted(refs.items()):
            if not key.startswith((repository + ":", repository + "@")):
                found.report(path, "key %s is not a reference of repository %s" % (key, repository))
            if image_id not in images:
                found.report(path, "%s points at %s, which is not an image of this root" % (key, image_id))


def check_distribution(store: DockerStore, found: Findings) -> None:
    """diffid-by-digest files hold a digest; v2metadata files a JSON array of entries (0644)."""
    for directory, valid, shape in (
        (store.layout.diffid_by_digest, is_digest, "sha256:<64 hex>, no newline"),
        (store.layout.v2metadata_by_diffid, _valid_v2metadata, "a JSON array of {Digest, SourceRepository, HMAC}"),
    ):
        for entry in listdir(directory):
            path = directory / entry
            if entry.startswith(TEMP_PREFIX):
                continue  # reported with the other leftovers
            text = found.read(path)
            if text is None:
                continue
            if not is_hex64(entry) or not valid(text):
                found.report(path, "malformed (name: 64 hex digits; content: %s)" % shape)
            found.modes(path, {".": 0o644})


def _valid_v2metadata(text: str) -> bool:
    try:
        entries = json.loads(text)
    except ValueError:
        return False
    return isinstance(entries, list) and all(
        isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("Digest", "SourceRepository", "HMAC"))
        for e in entries
    )
