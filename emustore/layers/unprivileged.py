"""What an extraction without root could not write: owners, device nodes, privileged xattrs.

Such a tree still reads like the image (contents, modes, links, times), but dockerd would see
different owners, missing devices and missing opaque markers. The record is saved beside the
layer's diff dir as `overlay2/<cache-id>/emustore-unwritten.json` so that fsck can report it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

RECORD_NAME = "emustore-unwritten.json"
ROOTLESS_OPAQUE_XATTR = "user.overlay.opaque"  # overlayfs mounted with userxattr (rootless dockerd)


def _show(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


@dataclass
class Unwritable:
    """Collects, for one layer, what the process lacked the privilege to write."""

    owners: Counter[str] = field(default_factory=Counter)  # "uid:gid" → entries left owned by us
    devices: list[dict[str, object]] = field(default_factory=list)
    xattrs: list[dict[str, str]] = field(default_factory=list)  # trusted.*, security.* ...
    opaque: list[str] = field(default_factory=list)  # dirs whose trusted.overlay.opaque is missing
    whiteouts: list[str] = field(default_factory=list)  # 0/0 devices the kernel refused (before 5.8)

    def owner(self, uid: int, gid: int) -> None:
        self.owners["%d:%d" % (uid, gid)] += 1

    def device(self, name: bytes, kind: str, major: int, minor: int, mode: int) -> None:
        self.devices.append({"path": _show(name), "type": kind, "major": major, "minor": minor, "mode": "%04o" % mode})

    def xattr(self, name: bytes, key: str) -> None:
        self.xattrs.append({"path": _show(name), "name": key})

    def lost(self) -> bool:
        """Whether anything at all could not be written."""
        return any(self.counts().values())

    def counts(self) -> Counter[str]:
        """Entries per kind (owners: every entry whose owner could not be set)."""
        return Counter(
            {
                "owners": sum(self.owners.values()),
                "device nodes": len(self.devices),
                "xattrs": len(self.xattrs),
                "opaque markers": len(self.opaque),
                "whiteouts": len(self.whiteouts),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> "Unwritable":
        """Read a record written by `to_json` (ValueError when it is not one)."""
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("not a record")
        return cls(
            owners=Counter(doc.get("owners") or {}),
            devices=list(doc.get("devices") or []),
            xattrs=list(doc.get("xattrs") or []),
            opaque=list(doc.get("opaque") or []),
            whiteouts=list(doc.get("whiteouts") or []),
        )

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "owners": dict(sorted(self.owners.items())),
                "devices": self.devices,
                "xattrs": self.xattrs,
                "opaque": self.opaque,
                "whiteouts": self.whiteouts,
            },
            indent=1,
        ).encode()


def warning_line(counts: Counter[str], layers: int) -> str:
    """The one warning a pull without root prints."""
    parts = ", ".join("%d %s" % (n, kind) for kind, n in counts.items() if n)
    return (
        "warning: not running as root, so %s could not be written as the image says; "
        "recorded in overlay2/<cache-id>/%s of %d layer(s)" % (parts, RECORD_NAME, layers)
    )
