"""Platform parsing, normalising and matching."""

from __future__ import annotations

import pytest

from emustore import platform as plat
from emustore.errors import ManifestError
from emustore.platform import Platform, best_match, host_platform, matches, normalize, parse_platform


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
        ("Linux/ARM/v7", Platform("linux", "arm", "v7")),
    ],
)
def test_parse(text: str, expected: Platform) -> None:
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "linux/arm/v7/x", "", "linux//v7"])
def test_parse_invalid(text: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_platform(text)
    assert str(info.value) == f'invalid platform "{text}": expected os/arch[/variant]'


def test_str() -> None:
    assert str(Platform("linux", "arm64")) == "linux/arm64"
    assert str(Platform("linux", "arm", "v7")) == "linux/arm/v7"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (Platform("linux", "x86_64"), Platform("linux", "amd64")),
        (Platform("linux", "x86-64"), Platform("linux", "amd64")),
        (Platform("linux", "amd64", "v1"), Platform("linux", "amd64")),
        (Platform("linux", "aarch64"), Platform("linux", "arm64")),
        (Platform("linux", "arm64", "v8"), Platform("linux", "arm64")),
        (Platform("linux", "arm64", "8"), Platform("linux", "arm64")),
        (Platform("linux", "arm"), Platform("linux", "arm", "v7")),
        (Platform("linux", "arm", "7"), Platform("linux", "arm", "v7")),
        (Platform("linux", "arm", "6"), Platform("linux", "arm", "v6")),
        (Platform("linux", "armhf"), Platform("linux", "arm", "v7")),
        (Platform("linux", "armel"), Platform("linux", "arm", "v6")),
        (Platform("linux", "i386"), Platform("linux", "386")),
        (Platform("Linux", "PPC64LE"), Platform("linux", "ppc64le")),
        (Platform("macos", "arm64"), Platform("darwin", "arm64")),
    ],
)
def test_normalize(given: Platform, expected: Platform) -> None:
    assert normalize(given) == expected


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", Platform("linux", "amd64")),
        ("aarch64", Platform("linux", "arm64")),
        ("armv7l", Platform("linux", "arm", "v7")),
        ("armv6l", Platform("linux", "arm", "v6")),
        ("i686", Platform("linux", "386")),
        ("i386", Platform("linux", "386")),
        ("s390x", Platform("linux", "s390x")),
    ],
)
def test_host_platform(monkeypatch: pytest.MonkeyPatch, machine: str, expected: Platform) -> None:
    monkeypatch.setattr(plat._host, "machine", lambda: machine)
    monkeypatch.setattr(plat._host, "system", lambda: "Linux")
    assert host_platform() == expected


AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
ARMV5 = {"os": "linux", "architecture": "arm", "variant": "v5"}
ARMV6 = {"os": "linux", "architecture": "arm", "variant": "v6"}
ARMV7 = {"os": "linux", "architecture": "arm", "variant": "v7"}
UNKNOWN = {"os": "unknown", "architecture": "unknown"}
WINDOWS = {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"}


@pytest.mark.parametrize(
    ("spec", "candidate", "expected"),
    [
        ("linux/amd64", AMD64, True),
        ("linux/amd64", {"os": "linux", "architecture": "x86_64"}, True),
        ("linux/amd64", WINDOWS, False),
        ("linux/amd64", UNKNOWN, False),
        ("unknown/unknown", UNKNOWN, False),
        ("linux/arm64", ARM64, True),
        ("linux/arm64", {"os": "linux", "architecture": "arm64"}, True),
        ("linux/arm64/v8", {"os": "linux", "architecture": "aarch64"}, True),
        ("linux/arm64", ARMV7, False),
        ("linux/arm", ARMV7, True),
        ("linux/arm", {"os": "linux", "architecture": "arm"}, True),
        ("linux/arm/v7", ARMV6, True),
        ("linux/arm/v7", ARMV5, True),
        ("linux/arm/v6", ARMV7, False),
        ("linux/arm/v8", ARMV7, True),
        ("linux/amd64", {}, False),
        ("linux/amd64", {"os": "linux"}, False),
    ],
)
def test_matches(spec: str, candidate: dict, expected: bool) -> None:
    assert matches(parse_platform(spec), candidate) is expected


def test_best_match_prefers_exact_then_closest_then_list_order() -> None:
    armv7 = parse_platform("linux/arm/v7")
    assert best_match(armv7, [ARMV5, ARMV6, ARMV7]) == 2
    assert best_match(armv7, [ARMV5, ARMV6]) == 1
    assert best_match(armv7, [ARMV5, UNKNOWN, ARMV5]) == 0
    assert best_match(armv7, [AMD64, ARM64]) is None
    amd64 = parse_platform("linux/amd64")
    assert best_match(amd64, [UNKNOWN, None, AMD64, AMD64]) == 2
    assert best_match(amd64, []) is None
