"""An image config as dockerd 20.10 decodes it (image.Image, container.Config) and re-encodes it.

dockerd reads the config with Go's encoding/json into typed structs: keys match
case-insensitively, unknown keys vanish, null leaves zero values, and a value of the wrong type
makes the whole image unloadable. `decode_image` does the same and keeps the decoded values in
the shape `docker image inspect` prints them.
"""

from __future__ import annotations

import time

import calendar
import re
from dataclasses import dataclass
from typing import Any, Callable

from emustore.digest import is_digest
from emustore.engines import Dialect
from emustore.gojson import sorted_map

ZERO_TIME = "0001-01-01T00:00:00Z"
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([Zz])|([+-])(\d\d):(\d\d))"
)

_FRACTION = re.compile(r"\.(\d+)")


class ConfigTypeError(ValueError):
    """A config value whose JSON type does not fit dockerd's Go type (the image is not loaded)."""


@dataclass(frozen=True)
class GoTime:
    """A Go time.Time parsed from RFC 3339, printable as Go's RFC3339Nano and as Unix seconds."""

    text: str  # RFC3339Nano as Go formats it (fraction trimmed, "Z" for a zero offset)
    unix: int

    @classmethod
    def parse(cls, value: str) -> GoTime:
        match = _RFC3339.fullmatch(value)
        if match is None:
            raise ConfigTypeError("not an RFC 3339 time: %r" % value)
        year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
        fraction = (match[7] or "")[:9].rstrip("0")
        offset = 0
        if match[9]:
            offset = (int(match[10]) * 60 + int(match[11])) * 60 * (-1 if match[9] == "-" else 1)
        zone = "Z" if offset == 0 else "%s%s:%s" % (match[9], match[10], match[11])
        text = "%04d-%02d-%02dT%02d:%02d:%02d%s%s" % (
            year, month, day, hour, minute, second, "." + fraction if fraction else "", zone
        )
        unix = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
        return cls(text, unix)

    @property
    def timestamp(self) -> float:
        """Unix time with the fraction of the second (Go's time.Since works to the nanosecond)."""
        fraction = _FRACTION.search(self.text)
        return self.unix + (int(fraction[1]) / 10 ** len(fraction[1]) if fraction else 0)


ZERO = GoTime(ZERO_TIME, -62135596800)


def _field(doc: dict[str, Any], name: str) -> Any:
    """Go's key matching: the exact key wins, else the first key equal under case folding."""
    if name in doc:
        return doc[name]
    for key, value in doc.items():
        if key.lower() == name.lower():
            return value
    return None


def _string(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigTypeError("expected a string, got %r" % (value,))
    return value


def _bool(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigTypeError("expected a bool, got %r" % (value,))
    return value


def _int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ConfigTypeError("expected an integer, got %r" % (value,))
    return int(value)


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ConfigTypeError("expected a list of strings, got %r" % (value,))
    return [_string(v) for v in value]


def _strslice(value: Any) -> list[str]:
    """strslice.StrSlice: a string or a list of strings; null decodes to an empty list."""
    if isinstance(value, str):
        return [value]
    return _strings(value) or []


def _set(value: Any) -> dict[str, dict[str, Any]] | None:
    """map[string]struct{}: keys kept, values must be objects (or null)."""
    if value is None:
        return None
    if not isinstance(value, dict) or any(v is not None and not isinstance(v, dict) for v in value.values()):
        raise ConfigTypeError("expected an object of objects, got %r" % (value,))
    return sorted_map({k: {} for k in value})  # type: ignore[return-value]


def _labels(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigTypeError("expected an object of strings, got %r" % (value,))
    return sorted_map({k: _string(v) for k, v in value.items()})  # type: ignore[return-value]


def _health(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigTypeError("expected a healthcheck object, got %r" % (value,))
    out: dict[str, Any] = {}
    test = _strings(_field(value, "Test"))
    if test:
        out["Test"] = test
    for name in ("Interval", "Timeout", "StartPeriod", "Retries"):
        number = _int(_field(value, name))
        if number:
            out[name] = number
    return out


def _lenient(decode: Callable[[Any], Any], value: Any, zero: Any) -> Any:
    """A field 20.10 does not know (so never refuses) but newer engines read: `zero` if it does not decode."""
    try:
        return decode(value)
    except ConfigTypeError:
        return zero


def _start_interval(config: Any) -> int:
    """Healthcheck.StartInterval of a raw container config (26 and later keep it, 20.10 drops it)."""
    health = _field(config, "Healthcheck") if isinstance(config, dict) else None
    return _lenient(_int, _field(health, "StartInterval"), 0) if isinstance(health, dict) else 0


def _optional_int(value: Any) -> int | None:
    return None if value is None else _int(value)


# container.Config in field order: (name, decoder, omitempty)
_CONTAINER_CONFIG: tuple[tuple[str, Callable[[Any], Any], bool], ...] = (
    ("Hostname", _string, False),
    ("Domainname", _string, False),
    ("User", _string, False),
    ("AttachStdin", _bool, False),
    ("AttachStdout", _bool, False),
    ("AttachStderr", _bool, False),
    ("ExposedPorts", _set, True),
    ("Tty", _bool, False),
    ("OpenStdin", _bool, False),
    ("StdinOnce", _bool, False),
    ("Env", _strings, False),
    ("Cmd", lambda v: None if v is None else _strslice(v), False),
    ("Healthcheck", _health, True),
    ("ArgsEscaped", _bool, True),
    ("Image", _string, False),
    ("Volumes", _set, False),
    ("WorkingDir", _string, False),
    ("Entrypoint", lambda v: None if v is None else _strslice(v), False),
    ("NetworkDisabled", _bool, True),
    ("MacAddress", _string, True),
    ("OnBuild", _strings, False),
    ("Labels", _labels, False),
    ("StopSignal", _string, True),
    ("StopTimeout", _optional_int, True),
    ("Shell", lambda v: None if v is None else _strslice(v), True),
)


def decode_container_config(value: Any) -> dict[str, Any]:
    """container.Config as dockerd re-encodes it (every field, omitempty ones only when set)."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigTypeError("expected a container config object, got %r" % (value,))
    out: dict[str, Any] = {}
    for name, decode, omitempty in _CONTAINER_CONFIG:
        decoded = decode(_field(value, name))
        pointer = name in ("Healthcheck", "StopTimeout")
        if omitempty and (decoded is None if pointer else not decoded):
            continue
        out[name] = decoded
    return out


@dataclass(frozen=True)
class DecodedImage:
    """The fields of image.Image that listing and inspect use."""

    created: GoTime
    comment: str
    container: str
    container_config: dict[str, Any]
    docker_version: str
    author: str
    config: dict[str, Any] | None
    architecture: str
    variant: str
    os: str
    os_version: str
    rootfs_type: str
    diff_ids: tuple[str, ...]
    history_comments: tuple[str, ...]
    os_features: tuple[str, ...] = ()  # read by 28 (a container's ImagePlatform)
    health_start_interval: int = 0  # config.Healthcheck.StartInterval, which 26 and later keep

    def config_for(self, dialect: Dialect) -> dict[str, Any] | None:
        """`config` as engine `dialect` decodes it: 26 and later keep Healthcheck.StartInterval."""
        config = self.config
        health = None if config is None else config.get("Healthcheck")
        if config is None or health is None or not (dialect.healthcheck_start_interval and self.health_start_interval):
            return config
        fields = list(health.items())
        at = next((i for i, (name, _) in enumerate(fields) if name == "Retries"), len(fields))
        fields.insert(at, ("StartInterval", self.health_start_interval))
        return {**config, "Healthcheck": dict(fields)}


def decode_image(doc: Any) -> DecodedImage:
    """Decode a parsed config like dockerd; ConfigTypeError when dockerd would refuse it."""
    if not isinstance(doc, dict):
        raise ConfigTypeError("image config is not a JSON object")
    created_raw = _field(doc, "created")
    created = ZERO if created_raw is None else GoTime.parse(_string(created_raw))
    rootfs = _field(doc, "rootfs")
    if rootfs is not None and not isinstance(rootfs, dict):
        raise ConfigTypeError("rootfs is not an object")
    rootfs = rootfs or {}
    diff_ids = _strings(_field(rootfs, "diff_ids")) or []
    for diff_id in diff_ids:
        if not is_digest(diff_id):
            raise ConfigTypeError("bad diff id %r" % diff_id)
    history = _field(doc, "history")
    if history is not None and (not isinstance(history, list) or any(not isinstance(h, dict) for h in history)):
        raise ConfigTypeError("history is not a list of objects")
    config = _field(doc, "config")
    return DecodedImage(
        created=created,
        comment=_string(_field(doc, "comment")),
        container=_string(_field(doc, "container")),
        container_config=decode_container_config(_field(doc, "container_config")),
        docker_version=_string(_field(doc, "docker_version")),
        author=_string(_field(doc, "author")),
        config=None if config is None else decode_container_config(config),
        architecture=_string(_field(doc, "architecture")),
        variant=_string(_field(doc, "variant")),
        os=_string(_field(doc, "os")) or "linux",
        os_version=_string(_field(doc, "os.version")),
        rootfs_type=_string(_field(rootfs, "type")),
        diff_ids=tuple(diff_ids),
        history_comments=tuple(_string(_field(h, "comment")) for h in history or []),
        os_features=tuple(_lenient(_strings, _field(doc, "os.features"), None) or ()),
        health_start_interval=_start_interval(config),
    )


def rfc3339nano(ns: int) -> str:
    """Go's time.Format(RFC3339Nano) of a UTC time: trailing zeros of the fraction dropped."""
    seconds, fraction = divmod(ns, 10**9)
    digits = ("%09d" % fraction).rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ("." + digits if digits else "") + "Z"
