"""Containers and image inspect per engine dialect, without a daemon: the choice of dialect (flag,
$EMUSTORE_ENGINE, the root), each engine's config.v2.json/hostconfig.json layout, 26+'s
Healthcheck.StartInterval, 28's ImagePlatform and its OCI view of an image config. The expected
values are those observed with the engines (docs/container-format.md §9); the oracle tier
(tests/oracle/test_containers_engines.py) compares whole files with the engines themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emustore.engines import DEFAULT, DOCKER_20_10, DOCKER_26, DOCKER_28, ENGINE_ENV, Dialect, requested_dialect
from emustore.errors import UsageError
from emustore.stores.docker.containerconfig import CreateOptions, NoCommand, container_docs, image_platform, merged_config
from emustore.stores.docker.dialect import chosen_dialect, root_dialect
from emustore.stores.docker.goconfig import decode_image
from emustore.stores.docker.inspect import oci_image_config

ID = "cd" * 32
IMAGE_ID = "sha256:" + "e" * 64


@pytest.fixture(autouse=True)
def no_engine_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)


def test_requested_dialect_comes_from_the_flag_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert requested_dialect(None) is None
    assert requested_dialect("26.1.5") is DOCKER_26
    monkeypatch.setenv(ENGINE_ENV, "28")
    assert requested_dialect(None) is DOCKER_28
    assert requested_dialect("20.10") is DOCKER_20_10
    monkeypatch.setenv(ENGINE_ENV, "latest")
    with pytest.raises(UsageError, match="invalid engine version 'latest'"):
        requested_dialect(None)


def _config(root: Path, name: str, doc: object) -> None:
    (root / "containers" / name).mkdir(parents=True)
    (root / "containers" / name / "config.v2.json").write_text(json.dumps(doc))


def test_root_dialect_engine_id_then_containers(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert root_dialect(root) is DEFAULT
    (root / "containers").mkdir()
    _config(root, "a" * 64, {"ID": "x", "ImageManifest": None})
    assert root_dialect(root) is DEFAULT  # no engine-id: 20.10's, whatever the containers say
    (root / "engine-id").write_text("0b5c7d4e-1111-4222-8333-444455556666")
    assert root_dialect(root) is DOCKER_26
    _config(root, "0" * 64, {"ID": "y", "ImageManifest": None, "ImagePlatform": {}})
    assert root_dialect(root) is DOCKER_28
    for entry in (root / "containers").iterdir():
        (entry / "config.v2.json").write_text('{"ID": "20.10 style"}')
    assert root_dialect(root) is DOCKER_28  # a 26+ root that does not tell: 28


def test_root_dialect_reads_nothing_it_should_not(tmp_path: Path) -> None:
    """engine-id as a symlink does not count; a fifo, a huge or a broken config is skipped unread."""
    root = tmp_path / "root"
    (root / "containers").mkdir(parents=True)
    (tmp_path / "elsewhere").write_text("id")
    os.symlink(tmp_path / "elsewhere", root / "engine-id")
    assert root_dialect(root) is DEFAULT
    os.unlink(root / "engine-id")
    (root / "engine-id").write_text("id")
    for name in ("1" * 64, "2" * 64, "3" * 64, "4" * 64):
        (root / "containers" / name).mkdir()
    os.mkfifo(root / "containers" / ("1" * 64) / "config.v2.json")
    (root / "containers" / ("2" * 64) / "config.v2.json").write_text('{"ImageManifest": "' + "x" * (1 << 20) + '"}')
    (root / "containers" / ("3" * 64) / "config.v2.json").write_text("[" * 100_000)
    os.symlink(tmp_path / "elsewhere", root / "containers" / ("4" * 64) / "config.v2.json")
    assert root_dialect(root) is DOCKER_28


def test_chosen_dialect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "engine-id").write_text("id")
    assert chosen_dialect(None, tmp_path) is DOCKER_28
    assert chosen_dialect(DOCKER_26, tmp_path) is DOCKER_26
    assert chosen_dialect("20.10.24", tmp_path) is DOCKER_20_10
    monkeypatch.setenv(ENGINE_ENV, "26")
    assert chosen_dialect(None, tmp_path) is DOCKER_26


def _docs(dialect: Dialect, named: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    options = CreateOptions("busybox", name="web" if named else None)
    platform = {"architecture": "amd64", "os": "linux"}
    docs = container_docs(options, ID, 1_700_000_000_000_000_000, "web", IMAGE_ID, {"Cmd": ["sh"]}, dialect, platform)
    return json.loads(docs.config_v2), json.loads(docs.hostconfig)


def test_config_v2_layouts() -> None:
    old, new, newest = (_docs(d, named=False)[0] for d in (DOCKER_20_10, DOCKER_26, DOCKER_28))
    assert old["NetworkSettings"]["IsAnonymousEndpoint"] is True
    assert "ImageManifest" not in old and "ImagePlatform" not in old
    assert list(new)[8:11] == ["Image", "ImageManifest", "NetworkSettings"] and new["ImageManifest"] is None
    assert "IsAnonymousEndpoint" not in new["NetworkSettings"] and "ImagePlatform" not in new
    at = list(new).index("ConfigReferences")
    assert list(new)[at:at + 6] == ["ConfigReferences", "MountLabel", "ProcessLabel", "AppArmorProfile", "SeccompProfile", "NoNewPrivileges"]
    assert new["NetworkSettings"]["Networks"]["bridge"]["DNSNames"] is None
    assert "RemovalInProgress" in new["State"] and "RemovalInProgress" not in newest["State"]
    assert list(newest)[14:16] == ["OS", "ImagePlatform"] and newest["ImagePlatform"] == {"architecture": "amd64", "os": "linux"}
    assert newest["WritableCgroups"] is None and list(newest).index("WritableCgroups") == list(newest).index("NoNewPrivileges") + 1
    assert list(newest["NetworkSettings"]["Networks"]["bridge"])[3:6] == ["MacAddress", "DriverOpts", "GwPriority"]
    assert set(new) - set(old) == {"ImageManifest"} and set(newest) - set(new) == {"ImagePlatform", "WritableCgroups"}


def test_hostconfig_layouts() -> None:
    old, new, newest = (_docs(d)[1] for d in (DOCKER_20_10, DOCKER_26, DOCKER_28))
    assert (old["NetworkMode"], new["NetworkMode"], newest["NetworkMode"]) == ("default", "bridge", "bridge")
    assert "KernelMemory" in old and "KernelMemory" not in new and "KernelMemoryTCP" not in newest
    assert list(new).index("ConsoleSize") == list(new).index("VolumesFrom") + 1
    assert set(old) - set(new) == {"KernelMemory", "KernelMemoryTCP"} and list(new) == list(newest)
    assert new["MaskedPaths"] == old["MaskedPaths"] + ["/sys/devices/virtual/powercap"]
    assert newest["MaskedPaths"] == old["MaskedPaths"][:2] + ["/proc/interrupts"] + new["MaskedPaths"][2:]
    assert (DOCKER_20_10.hostconfig_mode, DOCKER_26.hostconfig_mode, DOCKER_28.hostconfig_mode) == (0o644, 0o600, 0o600)


def test_no_command_in_each_engines_words() -> None:
    for dialect, words in ((DOCKER_20_10, "No command specified"), (DOCKER_28, "no command specified")):
        with pytest.raises(NoCommand) as raised:
            merged_config(CreateOptions("img", entrypoint=""), {"Cmd": ["sh"]}, "h", dialect)
        assert str(raised.value) == words


CONFIG = {
    "architecture": "arm64", "variant": "v8", "os": "linux", "os.version": "1.2", "os.features": ["f"],
    "config": {
        "Cmd": "sh", "Env": [], "Labels": {}, "Volumes": {}, "ExposedPorts": {}, "Shell": [], "Hostname": "h", "Tty": True,
        "MacAddress": "m", "StopTimeout": 3, "OnBuild": ["RUN x"], "StopSignal": "SIGQUIT",
        "Healthcheck": {"Test": ["CMD", "true"], "StartInterval": 2, "Retries": 3},
    },
}


def test_start_interval_is_kept_from_26_on() -> None:
    decoded = decode_image(CONFIG)
    assert decoded.config is not None and decoded.config_for(DOCKER_20_10) is decoded.config
    assert list(decoded.config["Healthcheck"].items()) == [("Test", ["CMD", "true"]), ("Retries", 3)]
    health = decoded.config_for(DOCKER_26)["Healthcheck"]  # type: ignore[index]
    assert list(health.items()) == [("Test", ["CMD", "true"]), ("StartInterval", 2), ("Retries", 3)]
    odd = decode_image({**CONFIG, "config": {"Cmd": "sh", "Healthcheck": {"StartInterval": "soon"}}})
    assert odd.config_for(DOCKER_28) == odd.config  # a value 20.10 ignores and 26+ cannot use: left out


def test_image_platform_in_oci_order() -> None:
    assert list(image_platform(decode_image(CONFIG)).items()) == [
        ("architecture", "arm64"), ("os", "linux"), ("os.version", "1.2"), ("os.features", ["f"]), ("variant", "v8"),
    ]
    assert image_platform(decode_image({**CONFIG, "os.features": "bad"})).get("os.features") is None


def test_28s_image_config_view() -> None:
    view = oci_image_config(decode_image(CONFIG).config_for(DOCKER_28))
    assert json.dumps(view) == json.dumps({
        "Cmd": ["sh"], "Entrypoint": None, "Env": None,
        "Healthcheck": {"Retries": 3, "StartInterval": 2, "Test": ["CMD", "true"]},
        "Labels": None, "OnBuild": ["RUN x"], "StopSignal": "SIGQUIT", "User": "", "Volumes": None, "WorkingDir": "",
    })
    assert json.dumps(oci_image_config(None)) == json.dumps({
        "Cmd": None, "Entrypoint": None, "Env": None, "Labels": None, "OnBuild": None, "User": "", "Volumes": None,
        "WorkingDir": "",
    })


@pytest.mark.parametrize("command", ["inspect", "create"])
def test_a_bad_engine_is_one_line_and_exit_125(command: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emustore", command, "--root", str(tmp_path), "--engine", "latest", "busybox"],
        capture_output=True, text=True, env={**os.environ, "EMUSTORE_DEBUG": ""},
    )
    assert (result.returncode, result.stdout) == (125, "")
    assert result.stderr.startswith("emustore: invalid engine version 'latest': ") and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
