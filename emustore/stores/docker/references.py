"""image/overlay2/repositories.json: the reference store (familiar names → image ids)."""

from __future__ import annotations

import json

from emustore.errors import StoreError
from emustore.fsutil import atomic_write, fsync_dir
from emustore.gojson import go_json, sorted_map
from emustore.reference import Reference
from emustore.stores.docker.layout import DataRoot

Repositories = dict[str, dict[str, str]]


def lookup_key(ref: Reference) -> str:
    """The key a reference is stored under: "name@digest" when it has a digest (its tag is then
    dropped, as dockerd drops it), else "name:tag" ("latest" when it has none)."""
    if ref.digest:
        return ref.digest_key(ref.digest)
    return "%s:%s" % (ref.familiar_name, ref.tag or "latest")


def lookup(repos: Repositories, ref: Reference) -> str | None:
    """The image id `ref` names in a repositories map, if any."""
    return repos.get(ref.familiar_name, {}).get(lookup_key(ref))


class ReferenceStore:
    def __init__(self, layout: DataRoot) -> None:
        self.layout = layout

    def load(self) -> Repositories:
        """The current map; a missing file is empty, a malformed one an error (dockerd refuses it)."""
        try:
            raw = self.layout.repositories_json.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
            repos = data["Repositories"]
            if not isinstance(repos, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise StoreError(
                "%s is malformed; dockerd would not start on this root" % self.layout.repositories_json
            ) from None
        return repos

    def add(self, additions: list[tuple[str, str, str]]) -> None:
        """Set each (familiar repository, key, image id) and rewrite the file atomically (0600)."""
        repos = self.load()
        for repository, key, image_id in additions:
            repos.setdefault(repository, {})[key] = image_id
        self.save(repos)

    def save(self, repos: Repositories) -> None:
        document = {"Repositories": sorted_map({r: sorted_map(refs) for r, refs in repos.items()})}
        path = self.layout.repositories_json
        atomic_write(path, go_json(document).encode("utf-8"), 0o600, temp_prefix=".tmp-repositories.json")
        fsync_dir(path.parent)
