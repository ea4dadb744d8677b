"""Credentials, basic auth behind TLS (test CA, client certs) and token auth, against real docker-registries."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emustore.errors import EmustoreError, NotFound, RegistryError
from emustore.pull import PullOptions, pull
from emustore.registry.credentials import CredentialStore
from emustore.registry.options import RegistryOptions
from emustore.registry.retry import RetryPolicy
from tests.support.imagefactory import PushedImage, busybox_image
from tests.support.pki import TestCA, self_signed
from tests.support.registry import RegistryServer
from tests.support.tokenissuer import TokenIssuer

pytestmark = pytest.mark.registry

PASSWORD = "s3cret-Pa55word-never-shown"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, budget=10.0)
DENIED = "repository does not exist or may require 'emustore login'"


def emustore(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emustore", *args], input=stdin, capture_output=True, text=True,
        timeout=300, env={**os.environ, **(env or {})},
    )


def write_config(config_dir: Path, doc: dict) -> CredentialStore:
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.json").write_text(json.dumps(doc))
    return CredentialStore(config_dir)


def basic_auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text
        assert basic_auth("alice", PASSWORD) not in text


@pytest.fixture(scope="module")
def image(registry: RegistryServer) -> PushedImage:
    """Pushed to the open session registry; the protected registries below share its storage."""
    return busybox_image("docker").push(registry.host, "secure/app", "v1")


def shared_storage(registry: RegistryServer) -> dict:
    return {"storage": {"filesystem": {"rootdirectory": str(registry.workdir / "storage")}}}


# -- htpasswd basic auth behind TLS with client certificates -------------------------------------------

@pytest.fixture(scope="module")
def tls_setup(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryServer, Path]]:
    """A TLS registry (server cert from a test CA, client certs required) with htpasswd; and a certs.d."""
    import bcrypt

    pki = tmp_path_factory.mktemp("pki")
    ca = TestCA(pki)
    server = ca.issue("server", server_ip="127.0.0.1")
    client = ca.issue("client", client=True)
    htpasswd = pki / "htpasswd"
    htpasswd.write_bytes(b"alice:" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)) + b"\n")
    override = shared_storage(registry) | {
        "http": {"tls": {"certificate": str(server.cert), "key": str(server.key), "clientcas": [str(ca.pair.cert)]}},
        "auth": {"htpasswd": {"realm": "emustore-test", "path": str(htpasswd)}},
    }
    with RegistryServer(config_override=override) as secure:
        certs = tmp_path_factory.mktemp("certs.d")
        host_dir = certs / secure.host
        host_dir.mkdir()
        (host_dir / "ca.crt").write_bytes(ca.pair.cert.read_bytes())
        (host_dir / "client.cert").write_bytes(client.cert.read_bytes())
        (host_dir / "client.key").write_bytes(client.key.read_bytes())
        yield secure, certs


def secure_options(certs: Path | None, store: CredentialStore, **kw: object) -> RegistryOptions:
    """Loopback treated as secure (not in the insecure list), so TLS is verified like a remote registry."""
    return RegistryOptions(insecure_registries=(), certs_dir=certs, credentials=store, retry=FAST, **kw)  # type: ignore[arg-type]


def test_basic_auth_over_verified_tls_with_client_cert(
    tls_setup: tuple[RegistryServer, Path], image: PushedImage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secure, certs = tls_setup
    store = write_config(tmp_path / "docker", {"auths": {secure.host: {"auth": basic_auth("alice", PASSWORD)}}})
    caplog.set_level(logging.DEBUG)
    result = pull(f"{secure.host}/secure/app:v1", tmp_path / "root", PullOptions(registry=secure_options(certs, store)))
    assert result.image_id == image.image_id
    assert_no_secret(caplog.text, *(str(r.args) for r in caplog.records))


def test_tls_verification_is_on_by_default(
    tls_setup: tuple[RegistryServer, Path], image: PushedImage, tmp_path: Path
) -> None:
    secure, _ = tls_setup
    store = write_config(tmp_path / "docker", {"auths": {secure.host: {"auth": basic_auth("alice", PASSWORD)}}})
    with pytest.raises(RegistryError) as info:
        pull(f"{secure.host}/secure/app:v1", tmp_path / "root", PullOptions(registry=secure_options(tmp_path / "none", store)))
    message = str(info.value)
    assert message.startswith(f'Get "https://{secure.host}/v2/secure/app/manifests/v1": cannot connect')
    assert "certificate verify failed" in message and "\n" not in message


def test_insecure_registry_skips_verification_but_sends_the_client_cert(
    tls_setup: tuple[RegistryServer, Path], image: PushedImage, tmp_path: Path
) -> None:
    secure, certs = tls_setup
    client_only = tmp_path / "certs.d" / secure.host
    client_only.mkdir(parents=True)
    for name in ("client.cert", "client.key"):
        (client_only / name).write_bytes((certs / secure.host / name).read_bytes())
    store = write_config(tmp_path / "docker", {"auths": {secure.host: {"auth": basic_auth("alice", PASSWORD)}}})
    options = RegistryOptions(
        insecure_registries=(secure.host,), certs_dir=tmp_path / "certs.d", credentials=store, retry=FAST
    )
    assert pull(f"{secure.host}/secure/app:v1", tmp_path / "root", PullOptions(registry=options)).image_id == image.image_id


def test_wrong_password_is_access_denied_without_echoing_it(
    tls_setup: tuple[RegistryServer, Path], image: PushedImage, tmp_path: Path
) -> None:
    secure, certs = tls_setup
    store = write_config(tmp_path / "docker", {"auths": {secure.host: {"auth": basic_auth("alice", PASSWORD + "x")}}})
    with pytest.raises(NotFound) as info:
        pull(f"{secure.host}/secure/app:v1", tmp_path / "root", PullOptions(registry=secure_options(certs, store)))
    assert str(info.value) == (
        f"pull access denied for {secure.host}/secure/app, {DENIED}: unauthorized: authentication required"
    )
    assert_no_secret(str(info.value))


def test_login_pull_logout_on_the_command_line(
    tls_setup: tuple[RegistryServer, Path], image: PushedImage, tmp_path: Path
) -> None:
    secure, certs = tls_setup
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}
    wrong = emustore("login", secure.host, "-u", "alice", "--password-stdin", "--certs-dir", str(certs),
                     stdin="nope\n", env=env)
    assert wrong.returncode == 1 and wrong.stderr == (
        f"emustore: login attempt to https://{secure.host}/v2/ failed with status: 401 Unauthorized\n"
    )
    assert not (tmp_path / "docker/config.json").exists()

    login = emustore("login", secure.host, "-u", "alice", "--password-stdin", "--certs-dir", str(certs),
                     stdin=PASSWORD + "\n", env=env)
    assert login.returncode == 0, login.stderr
    assert login.stdout.splitlines()[-1] == "Login Succeeded"
    config = tmp_path / "docker/config.json"
    assert json.loads(config.read_text()) == {"auths": {secure.host: {"auth": basic_auth("alice", PASSWORD)}}}
    assert config.stat().st_mode & 0o777 == 0o600

    root = str(tmp_path / "root")
    pulled = emustore("pull", f"{secure.host}/secure/app:v1", "--root", root, "--certs-dir", str(certs), env=env)
    assert pulled.returncode == 0, pulled.stderr

    logout = emustore("logout", secure.host, env=env)
    assert (logout.returncode, logout.stdout) == (0, f"Removing login credentials for {secure.host}\n")
    assert json.loads(config.read_text()) == {"auths": {}}
    again = emustore("logout", secure.host, env=env)
    assert again.stdout == f"Not logged in to {secure.host}\n"

    refused = emustore("pull", f"{secure.host}/secure/app:v1", "--root", root, "--certs-dir", str(certs), env=env)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"emustore: pull access denied for {secure.host}/secure/app, {DENIED}")
    assert_no_secret(wrong.stdout, wrong.stderr, login.stdout, login.stderr, pulled.stdout, pulled.stderr,
                     logout.stdout, refused.stdout, refused.stderr)


def test_login_flag_errors() -> None:
    both = emustore("login", "127.0.0.1:1", "-u", "a", "-p", "b", "--password-stdin")
    assert both.stderr == "emustore: --password and --password-stdin are mutually exclusive\n"
    no_user = emustore("login", "127.0.0.1:1", "--password-stdin", stdin="x")
    assert no_user.stderr == "emustore: Must provide --username with --password-stdin\n"


def test_login_and_logout_keep_a_symlinked_config_and_make_private_dirs(registry: RegistryServer, tmp_path: Path) -> None:
    """As the docker CLI: config.json written through its symlink (mode 0600), missing directories
    above $DOCKER_CONFIG made 0700 even under umask 000."""
    nested = tmp_path / "a" / "b" / "docker"
    made = subprocess.run(
        [sys.executable, "-m", "emustore", "login", registry.host, "-u", "alice", "--password-stdin"],
        input="pw\n", capture_output=True, text=True, timeout=300, umask=0,
        env={**os.environ, "DOCKER_CONFIG": str(nested)},
    )
    assert made.returncode == 0, made.stderr
    assert [oct(p.stat().st_mode & 0o777) for p in (tmp_path / "a", tmp_path / "a/b", nested)] == ["0o700"] * 3
    assert (nested / "config.json").stat().st_mode & 0o777 == 0o600

    linked = tmp_path / "linked"
    linked.mkdir()
    target = tmp_path / "dotfiles" / "docker.json"
    target.parent.mkdir()
    target.write_text("{}")
    (linked / "config.json").symlink_to(target)
    env = {"DOCKER_CONFIG": str(linked)}
    login = emustore("login", registry.host, "-u", "alice", "--password-stdin", stdin="pw\n", env=env)
    assert login.returncode == 0, login.stderr
    assert (linked / "config.json").is_symlink() and target.stat().st_mode & 0o777 == 0o600
    assert json.loads(target.read_text()) == {"auths": {registry.host: {"auth": basic_auth("alice", "pw")}}}
    logout = emustore("logout", registry.host, env=env)
    assert logout.returncode == 0 and (linked / "config.json").is_symlink()
    assert json.loads(target.read_text()) == {"auths": {}}


# -- token auth with the tests' own issuer ---------------------------------------------------------------

@pytest.fixture(scope="module")
def token_setup(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryServer, TokenIssuer]]:
    signing = self_signed(tmp_path_factory.mktemp("issuer"), "issuer")
    issuer = TokenIssuer(
        signing, service="emustore-test-registry", users={"alice": PASSWORD},
        grants={"alice": {"secure/app"}}, refresh_tokens={"identity-token-of-alice": "alice"},
    )
    try:
        with RegistryServer(config_override=shared_storage(registry) | issuer.registry_config()) as protected:
            yield protected, issuer
    finally:
        issuer.stop()


@pytest.fixture
def issuer(token_setup: tuple[RegistryServer, TokenIssuer]) -> TokenIssuer:
    token_setup[1].requests.clear()
    return token_setup[1]


def token_pull(protected: RegistryServer, store: CredentialStore, root: Path, name: str = "secure/app") -> str:
    options = RegistryOptions(credentials=store, retry=FAST, certs_dir=None)
    return pull(f"{protected.host}/{name}:v1", root, PullOptions(registry=options)).image_id


def test_token_with_credentials_one_token_per_scope(
    token_setup: tuple[RegistryServer, TokenIssuer], issuer: TokenIssuer, image: PushedImage, tmp_path: Path
) -> None:
    protected, _ = token_setup
    store = write_config(tmp_path / "docker", {"auths": {protected.host: {"auth": basic_auth("alice", PASSWORD)}}})
    assert token_pull(protected, store, tmp_path / "root") == image.image_id
    [request] = issuer.requests  # manifest, config and layers share one cached token
    assert (request.method, request.account, request.scopes) == ("GET", "alice", ["repository:secure/app:pull"])
    assert request.granted == [{"type": "repository", "name": "secure/app", "actions": ["pull"]}]


def test_token_with_identity_token(
    token_setup: tuple[RegistryServer, TokenIssuer], issuer: TokenIssuer, image: PushedImage, tmp_path: Path
) -> None:
    protected, _ = token_setup
    entry = {"auth": basic_auth("alice", ""), "identitytoken": "identity-token-of-alice"}
    store = write_config(tmp_path / "docker", {"auths": {f"https://{protected.host}": entry}})
    assert token_pull(protected, store, tmp_path / "root") == image.image_id
    assert [(r.method, r.account) for r in issuer.requests] == [("POST", "alice")]


def test_anonymous_token_has_no_access(
    token_setup: tuple[RegistryServer, TokenIssuer], issuer: TokenIssuer, image: PushedImage, tmp_path: Path
) -> None:
    protected, _ = token_setup
    with pytest.raises(NotFound) as info:
        token_pull(protected, CredentialStore(tmp_path / "empty"), tmp_path / "root")
    assert str(info.value).startswith(f"pull access denied for {protected.host}/secure/app, {DENIED}: ")
    assert [(r.account, r.scopes, r.granted) for r in issuer.requests] == [(None, ["repository:secure/app:pull"], [])]


def test_token_scope_outside_the_grant_is_refused(
    token_setup: tuple[RegistryServer, TokenIssuer], issuer: TokenIssuer, registry: RegistryServer, tmp_path: Path
) -> None:
    protected, _ = token_setup
    busybox_image("docker").push(registry.host, "other/app", "v1")
    store = write_config(tmp_path / "docker", {"auths": {protected.host: {"auth": basic_auth("alice", PASSWORD)}}})
    with pytest.raises(NotFound, match=f"pull access denied for {protected.host}/other/app"):
        token_pull(protected, store, tmp_path / "root", "other/app")
    assert issuer.requests[0].scopes == ["repository:other/app:pull"] and issuer.requests[0].granted == []


def test_token_wrong_password(
    token_setup: tuple[RegistryServer, TokenIssuer], issuer: TokenIssuer, image: PushedImage, tmp_path: Path
) -> None:
    protected, _ = token_setup
    store = write_config(tmp_path / "docker", {"auths": {protected.host: {"auth": basic_auth("alice", "wrong")}}})
    with pytest.raises(RegistryError) as info:
        token_pull(protected, store, tmp_path / "root")
    assert str(info.value) == (
        f"getting a registry token from {issuer.realm} for repository:secure/app:pull failed: HTTP 401 Unauthorized"
    )


FAKE_HELPER = """#!/bin/sh
# A fake docker-credential helper: knows one server, records what it is asked to store and erase.
server=$(cat)
case "$1" in
get)
    if [ "$server" = "{server}" ]; then
        printf '{{"ServerURL":"%s","Username":"alice","Secret":"{password}"}}' "$server"
    else
        echo "credentials not found in native keychain"; exit 1
    fi;;
store) printf '%s' "$server" > "{log}/stored";;
erase) printf '%s' "$server" > "{log}/erased";;
esac
"""


@pytest.fixture
def helper_path(token_setup: tuple[RegistryServer, TokenIssuer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-fake"
    script.write_text(FAKE_HELPER.format(server=token_setup[0].host, password=PASSWORD, log=tmp_path))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return tmp_path


@pytest.mark.parametrize("config_key", ["credHelpers", "credsStore"])
def test_credential_helpers(
    token_setup: tuple[RegistryServer, TokenIssuer], issuer: TokenIssuer, image: PushedImage,
    helper_path: Path, config_key: str,
) -> None:
    protected, _ = token_setup
    doc = {"credHelpers": {protected.host: "fake"}} if config_key == "credHelpers" else {"credsStore": "fake"}
    store = write_config(helper_path / "docker", doc)
    assert token_pull(protected, store, helper_path / "root") == image.image_id
    assert [r.account for r in issuer.requests] == ["alice"]
    assert store.get("other.example:5000") is None  # the helper's "not found" is no error


def test_credential_helper_store_and_erase(helper_path: Path) -> None:
    store = write_config(helper_path / "docker", {"credsStore": "fake", "auths": {}})
    from emustore.registry.credentials import Credentials

    store.store("docker.io", Credentials("alice", PASSWORD))
    assert json.loads((helper_path / "stored").read_text()) == {
        "ServerURL": "https://index.docker.io/v1/", "Username": "alice", "Secret": PASSWORD}
    assert json.loads((helper_path / "docker/config.json").read_text())["auths"] == {"https://index.docker.io/v1/": {}}
    assert store.erase("index.docker.io")
    assert (helper_path / "erased").read_text() == "https://index.docker.io/v1/"


def test_missing_helper_is_one_clear_line(tmp_path: Path) -> None:
    store = write_config(tmp_path / "docker", {"credsStore": "nonexistent-helper"})
    with pytest.raises(EmustoreError, match="^credential helper docker-credential-nonexistent-helper not found in PATH$"):
        store.get("registry.example")


def test_login_against_the_token_registry(
    token_setup: tuple[RegistryServer, TokenIssuer], issuer: TokenIssuer, tmp_path: Path
) -> None:
    protected, _ = token_setup
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}
    wrong = emustore("login", protected.host, "-u", "alice", "-p", "wrong", env=env)
    assert wrong.returncode == 1
    assert wrong.stderr.splitlines() == [
        "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
        f"emustore: getting a registry token from {issuer.realm} failed: HTTP 401 Unauthorized",
    ]
    done = emustore("login", protected.host, "-u", "alice", "--password-stdin", stdin=PASSWORD, env=env)
    assert done.returncode == 0, done.stderr
    assert [(r.account, r.scopes, r.status) for r in issuer.requests] == [(None, [], 401), ("alice", [], 200)]
    assert_no_secret(wrong.stdout, wrong.stderr, done.stdout, done.stderr)
