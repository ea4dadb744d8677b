"""image/overlay2/distribution: which blob gave which diff id, and from which repository."""

from __future__ import annotations

import json

from emustore.digest import hex_of
from emustore.fsutil import atomic_write_all
from emustore.gojson import go_json
from emustore.stores.docker.layout import DataRoot

MAX_V2_METADATA = 50


class DistributionMetadata:
    def __init__(self, layout: DataRoot) -> None:
        self.layout = layout

    def diff_id_for(self, blob_digest: str) -> str | None:
        try:
            return (self.layout.diffid_by_digest / hex_of(blob_digest)).read_text().strip()
        except FileNotFoundError:
            return None

    def v2metadata(self, diff_id: str) -> list[dict[str, str]]:
        try:
            entries = json.loads((self.layout.v2metadata_by_diffid / hex_of(diff_id)).read_bytes())
        except (FileNotFoundError, ValueError):
            return []
        return entries if isinstance(entries, list) else []

    def record_pulls(self, pulls: list[tuple[str, str, str]]) -> None:
        """For each (diff id, blob digest, repository) in order: append (dedupe first, keep the
        newest 50) a pull entry to the diff id's list, map the blob to the diff id. The files are
        written together (atomic_write_all: synced side by side)."""
        documents: dict[str, list[dict[str, str]]] = {}
        mapped: dict[str, str] = {}
        for diff_id, blob_digest, repository in pulls:
            entry = {"Digest": blob_digest, "SourceRepository": repository, "HMAC": ""}
            entries = documents[diff_id] if diff_id in documents else self.v2metadata(diff_id)
            entries = [e for e in entries if e != entry] + [entry]
            documents[diff_id] = [
                {"Digest": e.get("Digest", ""), "SourceRepository": e.get("SourceRepository", ""), "HMAC": e.get("HMAC", "")}
                for e in entries[-MAX_V2_METADATA:]
            ]
            mapped[blob_digest] = diff_id
        atomic_write_all(
            [(self.layout.v2metadata_by_diffid / hex_of(d), go_json(doc).encode("utf-8"), 0o644) for d, doc in documents.items()]
            + [(self.layout.diffid_by_digest / hex_of(b), d.encode("ascii"), 0o644) for b, d in mapped.items()]
        )
