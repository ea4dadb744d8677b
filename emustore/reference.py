"""Docker image references: parsing and normalising like `docker pull` (Docker Engine 20.10)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from emustore.digest import is_digest, is_hex64
from emustore.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
DEFAULT_REGISTRY_HOST = "registry-1.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
# docker's separator is `[._]|__|[-]*`; an empty separator adds nothing, so `-+` is the same
# language without the exponential backtracking an empty alternative causes here.
_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_HOST_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(
    rf"(?P<domain>{_DOMAIN})/(?P<path>{_PATH})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)


@dataclass(frozen=True)
class Reference:
    """A normalised reference: `domain`/`path`, with an optional tag and/or digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Fully normalised repository name, e.g. "docker.io/library/nginx"."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The short name docker shows: "nginx", "someorg/tool", "127.0.0.1:5000/a/b"."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        rest = self.path.removeprefix(OFFICIAL_PREFIX)
        return rest if "/" not in rest else self.path

    @property
    def registry_host(self) -> str:
        """The host[:port] that serves the registry API for this reference."""
        return DEFAULT_REGISTRY_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    def tag_key(self) -> str:
        """Key of this reference's tag in repositories.json, e.g. "nginx:latest"."""
        if self.tag is None:
            raise ValueError(f"reference {self} has no tag")
        return f"{self.familiar_name}:{self.tag}"

    def digest_key(self, digest: str) -> str:
        """Key of a digest reference in repositories.json, e.g. "nginx@sha256:…"."""
        return f"{self.familiar_name}@{digest}"

    def full_string(self) -> str:
        """Fully normalised form, e.g. "docker.io/library/nginx:latest"."""
        return self.name + self._suffix()

    def __str__(self) -> str:
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return tag + digest


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse `text` like docker's ParseNormalizedNamed.

    With `default_tag` (what a pull needs), a reference with neither tag nor digest gets "latest".
    """
    if is_hex64(text):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_domain(text)
    if remainder.split(":", 1)[0].lower() != remainder.split(":", 1)[0]:
        raise InvalidReference("invalid reference format: repository name must be lowercase")
    match = _REFERENCE_RE.fullmatch(f"{domain}/{remainder}")
    if match is None:
        raise InvalidReference(f"invalid reference format: {_quote(text)}")
    path, tag, digest = match["path"], match["tag"], match["digest"]
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"invalid reference format: repository name must not be more than "
            f"{NAME_TOTAL_LENGTH_MAX} characters: {_quote(text)}"
        )
    if digest is not None:
        _check_digest(digest, text)
    if default_tag and tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def _split_domain(text: str) -> tuple[str, str]:
    """Split off the registry domain; the first component is one only if it looks like a host."""
    first, slash, rest = text.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, text
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def _check_digest(digest: str, text: str) -> None:
    algorithm = digest.split(":", 1)[0]
    if algorithm != "sha256":
        raise InvalidReference(
            f"unsupported digest algorithm {algorithm!r} in {_quote(text)}: only sha256 is supported"
        )
    if not is_digest(digest):
        raise InvalidReference(
            f"invalid reference format: digest must be sha256 followed by 64 lowercase hex "
            f"characters: {_quote(text)}"
        )


def _quote(text: str) -> str:
    """Quote user text for a one-line message (escapes newlines and quotes)."""
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
