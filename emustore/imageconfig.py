"""The parts of an image config a pull checks before anything is registered (image/store.go)."""

from __future__ import annotations

from dataclasses import dataclass

from emustore import safejson
from emustore.digest import is_digest
from emustore.errors import ManifestError



@dataclass(frozen=True)
class ImageConfig:
    diff_ids: list[str]
    os: str
    created: str | None


def parse_image_config(data: bytes) -> ImageConfig:
    """Parse and validate rootfs, OS and history as dockerd does when creating the image."""
    try:
        doc = safejson.loads(data)
    except ValueError as exc:
        raise ManifestError("invalid image config: not JSON (%s)" % exc) from None
    if not isinstance(doc, dict):
        raise ManifestError("invalid image config: not a JSON object")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids", []), list):
        raise ManifestError("invalid image config: missing rootfs")
    diff_ids = rootfs.get("diff_ids") or []
    for diff_id in diff_ids:
        if not is_digest(diff_id):
            raise ManifestError("invalid image config: bad diff id %r" % (diff_id,))
    os_name = doc.get("os") or "linux"
    if os_name != "linux":
        raise ManifestError("image operating system %r cannot be used on this platform" % os_name)
    history = doc.get("history") or []
    if not isinstance(history, list):
        raise ManifestError("invalid image config: history is not a list")
    non_empty = sum(1 for h in history if not (isinstance(h, dict) and h.get("empty_layer")))
    if non_empty > len(diff_ids):
        raise ManifestError("too many non-empty layers in History section")
    created = doc.get("created")
    return ImageConfig(diff_ids=list(diff_ids), os=os_name, created=created if isinstance(created, str) else None)
