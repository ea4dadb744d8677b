"""image/overlay2/distribution: which blob gave which diff id, and from which repository."""

from __future__ import annotations

import json

from emustore.fsutil import atomic_write
from emustore.gojson import go_json
from emustore.stores.docker.layerdb import hex_of
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

    def record_pull(self, diff_id: str, blob_digest: str, repository: str) -> None:
        """Append (dedupe first, keep the newest 50) a pull entry, then map blob → diff id."""
        entry = {"Digest": blob_digest, "SourceRepository": repository, "HMAC": ""}
        entries = [e for e in self.v2metadata(diff_id) if e != entry]
        entries.append(entry)
        entries = entries[-MAX_V2_METADATA:]
        document = [
            {"Digest": e.get("Digest", ""), "SourceRepository": e.get("SourceRepository", ""), "HMAC": e.get("HMAC", "")}
            for e in entries
        ]
        atomic_write(self.layout.v2metadata_by_diffid / hex_of(diff_id), go_json(document).encode("utf-8"), 0o644)
        atomic_write(self.layout.diffid_by_digest / hex_of(blob_digest), diff_id.encode("ascii"), 0o644)
