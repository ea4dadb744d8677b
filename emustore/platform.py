"""Platforms (os/architecture/variant): parsing, normalising and matching like containerd."""

from __future__ import annotations

import platform as _host
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from emustore.errors import ManifestError

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "i386": "386",
    "i686": "386",
    "armhf": "arm",
    "armel": "arm",
}
_IMPLIED_VARIANT = {"armhf": "v7", "armel": "v6"}
_MACHINE_TO_PLATFORM = {
    "armv5l": ("arm", "v5"),
    "armv5tel": ("arm", "v5"),
    "armv5tejl": ("arm", "v5"),
    "armv6l": ("arm", "v6"),
    "armv7l": ("arm", "v7"),
    "armv8l": ("arm", "v8"),
}


@dataclass(frozen=True)
class Platform:
    """An image platform; `variant` is None when there is none."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


def parse_platform(text: str) -> Platform:
    """Parse "os/arch[/variant]" (e.g. "linux/arm64/v8"); the result is lowercased, not normalised."""
    parts = text.lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ManifestError(f'invalid platform "{text}": expected os/arch[/variant]')
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def normalize(p: Platform) -> Platform:
    """Canonical spelling: amd64, arm64 (v8 dropped), arm with an explicit variant (v7 by default)."""
    os_name = p.os.lower()
    if os_name == "macos":
        os_name = "darwin"
    raw_arch = p.architecture.lower()
    arch = _ARCH_ALIASES.get(raw_arch, raw_arch)
    variant = (p.variant or "").lower() or _IMPLIED_VARIANT.get(raw_arch, "")
    if arch == "amd64" and variant == "v1":
        variant = ""
    elif arch == "arm64" and variant in ("8", "v8"):
        variant = ""
    elif arch == "arm":
        variant = "v7" if variant in ("", "7") else variant
        if variant in ("5", "6", "8"):
            variant = "v" + variant
    return Platform(os_name, arch, variant or None)


def host_platform() -> Platform:
    """The platform of this machine, e.g. linux/amd64 or linux/arm/v7."""
    machine = _host.machine().lower()
    os_name = _host.system().lower() or "linux"
    if machine in _MACHINE_TO_PLATFORM:
        arch, variant = _MACHINE_TO_PLATFORM[machine]
        return Platform(os_name, arch, variant)
    return normalize(Platform(os_name, machine))


def _from_dict(candidate: Mapping[str, object]) -> Platform | None:
    os_name, arch, variant = (candidate.get(k) for k in ("os", "architecture", "variant"))
    if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
        return None
    if os_name == "unknown" or arch == "unknown":
        return None
    return normalize(Platform(os_name, arch, variant if isinstance(variant, str) else None))


def _rank(spec: Platform, candidate: Mapping[str, object]) -> int | None:
    """0 for an exact match, n>0 for the n-th fallback (older arm variants), None for no match."""
    want, got = normalize(spec), _from_dict(candidate)
    if got is None or want.os == "unknown" or (want.os, want.architecture) != (got.os, got.architecture):
        return None
    if want.variant is None or want.variant == got.variant:
        return 0
    if want.architecture == "arm" and got.variant is not None:
        accepted = _arm_fallbacks(want.variant)
        if got.variant in accepted:
            return accepted.index(got.variant)
    return None


def _arm_fallbacks(variant: str) -> list[str]:
    """Variants an arm CPU of `variant` runs, best first: v7 → [v7, v6, v5]."""
    if variant.startswith("v") and variant[1:].isdigit():
        return [f"v{n}" for n in range(int(variant[1:]), 4, -1)]
    return [variant]


def matches(spec: Platform, candidate: Mapping[str, object]) -> bool:
    """Whether an index entry's platform dict can run on `spec` (exactly or as an older arm variant)."""
    return _rank(spec, candidate) is not None


def best_match(spec: Platform, candidates: Sequence[Mapping[str, object] | None]) -> int | None:
    """Index of the best candidate: the first exact match, else the first closest compatible one."""
    best: tuple[int, int] | None = None
    for index, candidate in enumerate(candidates):
        rank = _rank(spec, candidate) if candidate is not None else None
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, index)
    return None if best is None else best[1]
