"""`docker images`: which images are listed, with which references, and one row per repo/tag.

The daemon's half (daemon/images/images.go) picks images and references; the CLI's half
(cli/command/formatter/image.go) expands them into rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emustore.stores.docker.catalog import Catalog, CatalogImage, StoredReference

NONE = "<none>"


@dataclass(frozen=True)
class ImageSummary:
    """An image as the images list shows it; `references` only those the filter matched."""

    image: CatalogImage
    references: tuple[StoredReference, ...]

    @property
    def untagged(self) -> bool:
        """Shown as `<none>:<none>`: no reference at all."""
        return not self.references


@dataclass(frozen=True)
class ImageRow:
    repository: str
    tag: str
    digest: str
    summary: ImageSummary


def list_images(catalog: Catalog, pattern: str | None = None, all_images: bool = False) -> list[ImageSummary]:
    """Images newest first; without `all_images` only heads; `pattern` is docker's REPO[:TAG] filter."""
    summaries = []
    for image in catalog.images() if all_images else catalog.heads():
        refs = image.references
        if pattern is not None:
            refs = tuple(r for r in refs if _matches(pattern, r))
            if not refs:
                continue
        summaries.append(ImageSummary(image, refs))
    return summaries


def rows(summary: ImageSummary, with_digests: bool) -> list[ImageRow]:
    """One row per (repository, tag), per digest too with `with_digests`; `<none>` where absent."""
    if summary.untagged:
        return [ImageRow(NONE, NONE, NONE, summary)]
    tags: dict[str, list[str]] = {}
    digests: dict[str, list[str]] = {}
    for ref in summary.references:
        name = ref.reference.familiar_name
        if ref.is_digest:
            digests.setdefault(name, []).append(ref.reference.digest or "")
        else:
            tags.setdefault(name, []).append(ref.reference.tag or "")
    out = []
    for repository, repo_tags in tags.items():
        repo_digests = digests.pop(repository, []) if with_digests else []
        digests.pop(repository, None)
        for tag in repo_tags:
            for digest in repo_digests or [NONE]:
                out.append(ImageRow(repository, tag, digest, summary))
    for repository, repo_digests in digests.items():
        for digest in repo_digests if with_digests else [""]:
            out.append(ImageRow(repository, NONE, digest, summary))
    return out


def _matches(pattern: str, ref: StoredReference) -> bool:
    """reference.FamiliarMatch: path.Match against the familiar string, then the familiar name."""
    regex = _path_match_regex(pattern)
    return bool(regex.fullmatch(ref.key) or regex.fullmatch(ref.reference.familiar_name))


def _path_match_regex(pattern: str) -> re.Pattern[str]:
    """Go's path.Match: `*` and `?` never cross "/", `[...]` classes, `\\` escapes."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
                i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))
