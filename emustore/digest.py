"""Digests: `sha256:` and 64 lowercase hex, the only form a store names anything by.

`Digest` is a `str` (so it goes wherever the text went: JSON, dict keys, messages, pickles to a
layer process) that was checked once, when it was made: parsed from text or computed from bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

PREFIX = "sha256:"
HEX64 = re.compile(r"[0-9a-f]{64}")
SHA256_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
SHORT = 12
_HEX = re.compile(r"[0-9a-f]{1,64}")


def is_digest(text: object) -> bool:
    """True for "sha256:<64 lowercase hex>" (nothing else may become a file name)."""
    return isinstance(text, str) and SHA256_DIGEST.fullmatch(text) is not None


def is_hex64(text: object) -> bool:
    """True for 64 lowercase hex digits (an id written without its algorithm, a cache id)."""
    return isinstance(text, str) and HEX64.fullmatch(text) is not None


def hex_of(digest: str) -> str:
    """The hex part of "sha256:<hex>" (a name under a sha256/ dir)."""
    return digest.split(":", 1)[1]


def match_id_prefix(text: str, ids: Iterable[str]) -> str | None:
    """The one id of `ids` ("sha256:<hex>") that `text` (hex digits, "sha256:" optional) begins, as
    dockerd matches an image id prefix; None when none does, or several (dockerd: No such image)."""
    prefix = text.removeprefix(PREFIX)
    if not prefix or not _HEX.fullmatch(prefix):
        return None
    found = [image_id for image_id in ids if image_id.startswith(PREFIX + prefix)]
    return found[0] if len(found) == 1 else None


def short_id(text: str) -> str:
    """The 12 hex digits docker shows for an id or digest, with or without its "sha256:"."""
    return text.split(":", 1)[-1][:SHORT]


class Digest(str):
    """A sha256 digest, valid by construction."""

    __slots__ = ()

    def __new__(cls, text: str) -> Digest:
        if not is_digest(text):
            raise ValueError("not a sha256 digest: %r" % str(text)[:80])
        return super().__new__(cls, text)

    @classmethod
    def parse(cls, text: object) -> Digest | None:
        """The digest `text` is, or None when it is not one."""
        return cls(text) if isinstance(text, str) and is_digest(text) else None

    @classmethod
    def from_hex(cls, hex_digits: str) -> Digest:
        """The digest whose hex part is `hex_digits` (a file name under a sha256/ dir)."""
        return cls(PREFIX + hex_digits)

    @classmethod
    def of_bytes(cls, data: bytes | bytearray | memoryview) -> Digest:
        return cls(PREFIX + hashlib.sha256(data).hexdigest())

    @classmethod
    def of_chunks(cls, chunks: Iterable[bytes]) -> Digest:
        """The digest of a stream read to its end, chunk by chunk."""
        hasher = Hasher()
        for chunk in chunks:
            hasher.update(chunk)
        return hasher.digest()

    @property
    def hex(self) -> str:
        return self[len(PREFIX) :]

    @property
    def short(self) -> str:
        return self[len(PREFIX) : len(PREFIX) + SHORT]


class Hasher:
    """A running sha256 whose result is a `Digest`."""

    __slots__ = ("_hash",)

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self._hash.update(chunk)

    def digest(self) -> Digest:
        return Digest(PREFIX + self._hash.hexdigest())
