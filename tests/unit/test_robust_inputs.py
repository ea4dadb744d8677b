"""Untrusted input without a registry: JSON nested deep wherever a document is read, body reads that
stop at their limit, the stall rule, and the docker config file written as the docker CLI writes it.

Each refusal must be one line (an emustore error, never a RecursionError); reads are measured by
the bytes taken from the source, never by time (the stall rule runs on a simulated clock).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emustore import safejson
from emustore.errors import EmustoreError, ManifestError, RegistryError
from emustore.imageconfig import parse_image_config
from emustore.load import load
from emustore.manifest import parse_manifest
from emustore.registry import client, stall
from emustore.registry.credentials import Credentials, CredentialsError, CredentialStore
from emustore.registry.options import OptionsError, load_daemon_config
from emustore.registry.stall import StallRule, TransferStalled, parse_stall_limit, watched
from emustore.sources.files import DirFiles
from tests.support.faults import counted
from tests.support.figures import module_figures, record

DEEP = b"[" * 100_000 + b"]" * 100_000  # a RecursionError for json.loads
FIGURES = {"cases": 0, "one_line_errors": 0}


def _refused(error: BaseException) -> str:
    message = str(error)
    FIGURES["cases"] += 1
    FIGURES["one_line_errors"] += "\n" not in message
    assert "\n" not in message and message, message
    return message


def test_nesting_is_measured_outside_strings() -> None:
    assert safejson.nesting(b'{"a": [1, {"b": "[[[{{{"}], "c": "\\"[["}') == 3
    assert safejson.nesting(b'"no [ containers"') == 0
    assert safejson.nesting(b"[" * 300 + b"]" * 300) == 300
    doc, depth = safejson.loads(b"[" * 256 + b"]" * 256), 1
    while doc != []:
        doc, depth = doc[0], depth + 1
    assert depth == 256
    with pytest.raises(safejson.TooDeep):
        safejson.loads(b"[" * 257 + b"]" * 257)
    with pytest.raises(ValueError, match="nested deeper than 256 levels"):
        safejson.loads(DEEP.decode())


def _deep_document(key: str) -> bytes:
    """A JSON object whose `key` holds the deep array (the shape each reader expects around it)."""
    return b'{"schemaVersion": 2, "' + key.encode() + b'": ' + DEEP + b"}"


def test_deep_manifests_and_configs_are_one_line() -> None:
    for content_type in ("application/vnd.docker.distribution.manifest.v2+json", None):
        with pytest.raises(ManifestError) as info:
            parse_manifest(_deep_document("layers"), content_type)
        assert "nested deeper" in _refused(info.value)
    with pytest.raises(ManifestError) as info:
        parse_image_config(_deep_document("history"))
    assert "nested deeper" in _refused(info.value)


def test_deep_local_config_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "daemon.json").write_bytes(_deep_document("registry-mirrors"))
    with pytest.raises(OptionsError) as info:
        load_daemon_config(tmp_path / "daemon.json")
    assert "nested deeper" in _refused(info.value)
    (tmp_path / "config.json").write_bytes(_deep_document("auths"))
    with pytest.raises(CredentialsError) as info:
        CredentialStore(tmp_path).get("r.example")
    assert "nested deeper" in _refused(info.value)


def _tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _layout(directory: Path, index: bytes, blobs: tuple[bytes, ...] = ()) -> None:
    (directory / "blobs/sha256").mkdir(parents=True)
    for blob in blobs:
        (directory / "blobs/sha256" / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    (directory / "index.json").write_bytes(index)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


def _deep_inputs(tmp_path: Path) -> dict[str, Path]:
    """Archives and layouts whose first JSON document, or the one it leads to, nests 100000 deep."""
    archive = tmp_path / "docker-archive.tar"
    _tar(archive, {"manifest.json": DEEP})
    config = _deep_document("history")
    archive_config = tmp_path / "docker-archive-config.tar"
    _tar(archive_config, {
        "manifest.json": json.dumps([{"Config": "c.json", "Layers": []}]).encode(), "c.json": config,
    })
    _layout(tmp_path / "layout-index", _deep_document("manifests"))
    manifest = _deep_document("layers")
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": len(manifest),
             "digest": "sha256:" + hashlib.sha256(manifest).hexdigest()}
    _layout(tmp_path / "layout-manifest", json.dumps({"schemaVersion": 2, "manifests": [entry]}).encode(), (manifest,))
    return {
        "docker-archive manifest.json": archive,
        "docker-archive config": archive_config,
        "oci-layout index.json": tmp_path / "layout-index",
        "oci-layout manifest": tmp_path / "layout-manifest",
    }


def test_deep_archives_and_layouts_are_one_line(tmp_path: Path) -> None:
    for case, source in _deep_inputs(tmp_path).items():
        root = tmp_path / ("root-" + case.replace(" ", "-"))
        with pytest.raises(EmustoreError) as info:
            list(load(source, root))
        assert "nested deeper" in _refused(info.value), case
        assert not (root / "image").exists(), case


def test_deep_layout_on_the_command_line_is_one_line_without_traceback(tmp_path: Path) -> None:
    layout = _deep_inputs(tmp_path)["oci-layout index.json"]
    done = subprocess.run(
        [sys.executable, "-m", "emustore", "load", "-i", str(layout), "--root", str(tmp_path / "root")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("emustore: ") and done.stderr.count("\n") == 1, done.stderr
    assert "nested deeper than 256 levels" in done.stderr and "Traceback" not in done.stderr
    _refused(EmustoreError(done.stderr.strip()))


def test_a_layout_file_that_grew_after_its_stat_is_read_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "index.json").write_bytes(b"{}" + b" " * (1 << 20))
    files = DirFiles(tmp_path)
    real_stat = files._stat
    monkeypatch.setattr(files, "_stat", lambda name: os.stat_result((*real_stat(name)[:6], 2, *real_stat(name)[7:])))
    assert files.size("index.json") == 2  # what the stat said before the file grew
    with pytest.raises(ManifestError) as info:
        files.read("index.json", 1024)
    assert "larger than 1024 bytes" in _refused(info.value)


class _Body(httpx.SyncByteStream):
    """A response body of `chunks`, counting the bytes the reader took."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.read = counted(chunks)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.read)


def _endless(chunk: int = 64 << 10) -> Iterator[bytes]:
    while True:
        yield b"\0" * chunk


def _response(body: _Body, **headers: str) -> httpx.Response:
    return httpx.Response(200, headers=headers, stream=body, request=httpx.Request("GET", "http://127.0.0.1:1/x"))


def test_an_endless_body_is_read_to_its_limit_and_one_chunk_no_further() -> None:
    body = _Body(_endless())
    with pytest.raises(RegistryError) as info:
        client._read_limited(_response(body), "http://127.0.0.1:1/x", 1 << 20, "token answer", None, RegistryError)
    assert "larger than the 1048576-byte limit" in _refused(info.value)
    assert (1 << 20) < body.read.total <= (1 << 20) + (64 << 10)
    record("endless body read", limit=1 << 20, read=body.read.total)


def test_an_announced_oversize_or_an_encoded_body_is_not_read_at_all() -> None:
    body = _Body(_endless())
    with pytest.raises(ManifestError):
        client._read_limited(_response(body, **{"content-length": str(5 << 20)}), "u", 4 << 20, "manifest", None)
    encoded = _Body(_endless())
    with pytest.raises(ManifestError) as info:
        client._read_limited(_response(encoded, **{"content-encoding": "zstd"}), "u", 4 << 20, "manifest", None)
    assert "Content-Encoding 'zstd'" in _refused(info.value)
    assert body.read.total == encoded.read.total == 0


class _Clock:
    """time.monotonic for the stall module: advanced by the source, not by waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


def _dripping(clock: _Clock, seconds_per_byte: float, count: int) -> Iterator[bytes]:
    for _ in range(count):
        clock.now += seconds_per_byte
        yield b"x"


def test_the_stall_rule_ends_a_dripping_body(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(stall, "time", clock)
    source = counted(_dripping(clock, 20.0, 1_000_000))  # one byte every 20 s, for ever
    with pytest.raises(TransferStalled) as info:
        for _ in watched(source, StallRule(65536, 60.0), "http://127.0.0.1:1/blob"):
            pass
    assert "transfer stalled: 3 bytes in 60.0s" in _refused(info.value)
    assert source.total == 3


def test_the_stall_rule_spares_steady_transfers_and_a_slow_consumer(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(stall, "time", clock)
    steady = [b"x" * 1024] * 10_000  # 1 KiB per 0.01 s: 6 MiB a minute, far above 64 KiB

    def timed() -> Iterator[bytes]:
        for chunk in steady:
            clock.now += 0.01
            yield chunk

    received = 0
    for chunk in watched(timed(), StallRule(65536, 60.0), "u"):
        received += len(chunk)
        clock.now += 5.0  # the consumer's own time (extraction) does not count as waiting
    assert received == len(steady) * 1024


@pytest.mark.parametrize("text, rule", [("65536/60", StallRule(65536, 60.0)), ("1/0.5", StallRule(1, 0.5)),
                                        ("off", None), ("0", None)])
def test_stall_limit_syntax(text: str, rule: StallRule | None) -> None:
    assert parse_stall_limit(text) == rule


@pytest.mark.parametrize("text", ["", "60", "x/1", "1/x", "-1/5", "5/0", "5/inf", "5/nan"])
def test_bad_stall_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_stall_limit(text)
    _refused(info.value)


def test_login_writes_through_a_symlinked_config(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "docker-config.json"
    real.parent.mkdir()
    real.write_text(json.dumps({"credsStore": ""}))
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker/config.json").symlink_to(real)
    store = CredentialStore(tmp_path / "docker")
    store.store("r.example", Credentials("alice", "pw"))
    assert (tmp_path / "docker/config.json").is_symlink()
    assert store.get("r.example") == Credentials("alice", "pw")
    assert real.stat().st_mode & 0o777 == 0o600
    assert store.erase("r.example")
    assert (tmp_path / "docker/config.json").is_symlink() and json.loads(real.read_text())["auths"] == {}
    assert sorted(os.listdir(real.parent)) == ["docker-config.json"]  # no temp file left beside it


def test_login_makes_missing_directories_private_whatever_the_umask(tmp_path: Path) -> None:
    config_dir = tmp_path / "a" / "b" / "docker"
    old = os.umask(0)
    try:
        CredentialStore(config_dir).store("r.example", Credentials("alice", "pw"))
    finally:
        os.umask(old)
    modes = {str(p.relative_to(tmp_path)): p.stat().st_mode & 0o777 for p in (tmp_path / "a", tmp_path / "a/b", config_dir)}
    assert modes == {"a": 0o700, "a/b": 0o700, "a/b/docker": 0o700}
    assert (config_dir / "config.json").stat().st_mode & 0o777 == 0o600


def _check_figures(figures: dict[str, int], selected: dict[str, int]) -> None:
    """Held once every selected test of this module ran (tests/support/figures.py)."""
    assert figures["cases"] == figures["one_line_errors"] > 0


_figures = module_figures("untrusted documents", FIGURES, _check_figures)
