"""Registry configuration without a registry: credentials files, Hub aliases, insecure rules, retry timing."""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import pytest

from emustore.registry.credentials import HUB_SERVER, Credentials, CredentialsError, CredentialStore, server_key
from emustore.registry.options import (
    DEFAULT_INSECURE,
    OptionsError,
    RegistryOptions,
    add_registry_arguments,
    options_from_args,
)
from emustore.registry.retry import RetryClock, RetryPolicy, parse_retry_after


@pytest.mark.parametrize(
    "server", ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"]
)
def test_docker_hub_aliases_share_one_key(server: str) -> None:
    assert server_key(server) == HUB_SERVER


def test_other_servers_keep_their_name() -> None:
    assert server_key("ghcr.io") == "ghcr.io"
    assert server_key("127.0.0.1:5000") == "127.0.0.1:5000"


def test_store_get_erase_round_trip(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "docker")
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker/config.json").write_text(json.dumps({"HttpHeaders": {"X": "y"}}))
    store.store("index.docker.io", Credentials("alice", "pw:with:colons"))
    doc = json.loads((tmp_path / "docker/config.json").read_text())
    assert doc == {"HttpHeaders": {"X": "y"}, "auths": {HUB_SERVER: {"auth": base64.b64encode(b"alice:pw:with:colons").decode()}}}
    assert store.get("docker.io") == Credentials("alice", "pw:with:colons")
    assert store.erase("registry-1.docker.io") and store.get("docker.io") is None
    assert not store.erase("docker.io")


def test_lookup_by_hostname_of_a_url_key(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"https://reg.example:5000/v2/": {
        "auth": base64.b64encode(b"u:p").decode(), "identitytoken": "tok"}}}))
    assert CredentialStore(tmp_path).get("reg.example:5000") == Credentials("u", "p", "tok")


def test_secrets_stay_out_of_repr() -> None:
    assert "hunter2" not in repr(Credentials("alice", "hunter2", "tok-hunter2"))


@pytest.mark.parametrize("content", ["{", "[]", '{"auths": {"r.example": {"auth": "!!"}}}'])
def test_broken_config_is_one_line(tmp_path: Path, content: str) -> None:
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(CredentialsError) as info:
        CredentialStore(tmp_path).get("r.example")
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)


@pytest.mark.parametrize(
    ("host", "insecure"),
    [("127.0.0.1:5000", True), ("localhost", True), ("[::1]:5000", True), ("10.1.2.3", True),
     ("listed.example:5000", True), ("listed.example", False), ("other.example", False), ("11.0.0.1", False)],
)
def test_insecure_rules(host: str, insecure: bool) -> None:
    options = RegistryOptions(insecure_registries=DEFAULT_INSECURE + ("10.0.0.0/8", "listed.example:5000"))
    assert options.is_insecure(host) is insecure


def _args(tmp_path: Path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_registry_arguments(parser)
    return parser.parse_args(list(argv))


def test_daemon_json_and_flags_combine(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"registry-mirrors": ["https://m1.example/"], "insecure-registries": ["r.example:5000"]}))
    options = options_from_args(_args(tmp_path, "--config", str(config), "--registry-mirror", "http://m2.example",
                                      "--insecure-registry", "10.0.0.0/8"))
    assert options.mirrors == ("https://m1.example", "http://m2.example")
    assert options.insecure_registries == DEFAULT_INSECURE + ("r.example:5000", "10.0.0.0/8")


@pytest.mark.parametrize(
    ("content", "message"),
    [("{", "is not valid JSON"), ('{"registry-mirrors": "x"}', "registry-mirrors must be a list of strings")],
)
def test_bad_daemon_json(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(content)
    with pytest.raises(OptionsError, match=message):
        options_from_args(_args(tmp_path, "--config", str(config)))


def test_insecure_registry_with_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="should not contain '://'"):
        options_from_args(_args(tmp_path, "--insecure-registry", "http://r.example"))


def test_backoff_is_bounded_and_jittered() -> None:
    policy = RetryPolicy(attempts=10, base_delay=1.0, max_delay=8.0)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delay = policy.backoff(failures)
        assert ceiling / 2 <= delay <= ceiling


def test_retry_clock_counts_attempts_and_budget() -> None:
    clock = RetryClock(RetryPolicy(attempts=3, budget=100.0))
    assert clock.next_delay(0.0) == 0.0 and clock.next_delay(0.0) == 0.0 and clock.next_delay(0.0) is None
    assert RetryClock(RetryPolicy(budget=5.0)).next_delay(60.0) is None  # Retry-After past the budget


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
