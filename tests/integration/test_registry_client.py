"""RegistryClient and RegistrySource against a real docker-registry (plus a tiny fake for auth/redirects)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from emustore import manifest as m
from emustore.errors import DigestMismatch, ManifestError, NotFound, RegistryError
from emustore.platform import Platform
from emustore.reference import parse_reference
from emustore.registry.auth import Challenge, parse_www_authenticate
from emustore.registry.client import RegistryClient, is_default_insecure
from emustore.sources.registry import RegistrySource
from tests.support.pushclient import PushClient
from tests.support.registry import RegistryServer

REGISTRY_BINARY = "/usr/bin/docker-registry"
CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: {addr}
"""


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Registry:
    """A private docker-registry process on a free loopback port, with helpers to push content."""

    def __init__(self, workdir: Path) -> None:
        self.storage = workdir / "storage"
        self.host = f"127.0.0.1:{_free_port()}"
        self.url = f"http://{self.host}"
        config = workdir / "config.yml"
        config.write_text(CONFIG.format(root=self.storage, addr=self.host))
        with (workdir / "registry.log").open("wb") as log:
            self.process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.http = httpx.Client(base_url=self.url, timeout=10)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.http.get("/v2/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"docker-registry did not start; see {workdir / 'registry.log'}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def push_blob(self, name: str, data: bytes) -> str:
        digest = _sha(data)
        started = self.http.post(f"/v2/{name}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        sep = "&" if "?" in location else "?"
        done = self.http.put(f"{location}{sep}digest={digest}", content=data,
                             headers={"Content-Type": "application/octet-stream"})
        assert done.status_code == 201, done.text
        return digest

    def push_manifest(self, name: str, tag: str, doc: dict) -> tuple[bytes, str]:
        data = json.dumps(doc, indent=3).encode()
        answer = self.http.put(f"/v2/{name}/manifests/{tag}", content=data,
                               headers={"Content-Type": doc["mediaType"]})
        assert answer.status_code == 201, answer.text
        return data, _sha(data)

    def blob_path(self, digest: str) -> Path:
        hexa = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexa[:2] / hexa / "data"

    def push_image(self, name: str, tag: str, *, arch: str = "amd64",
                   layer_type: str = m.DOCKER_LAYER, media_type: str = m.DOCKER_MANIFEST,
                   config_type: str = m.DOCKER_CONFIG, layers: tuple[bytes, ...] = (b"layer-one", b"layer-two"),
                   ) -> dict:
        config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers"}}).encode()
        config_digest = self.push_blob(name, config)
        layer_descs = [{"mediaType": layer_type, "digest": self.push_blob(name, data), "size": len(data)}
                       for data in layers]
        doc = {"schemaVersion": 2, "mediaType": media_type,
               "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
               "layers": layer_descs}
        data, digest = self.push_manifest(name, tag, doc)
        return {"doc": doc, "bytes": data, "digest": digest, "config": config, "config_digest": config_digest}


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Registry]:
    if not (os.path.isfile(REGISTRY_BINARY) and os.access(REGISTRY_BINARY, os.X_OK)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{REGISTRY_BINARY} is missing (CI=true)", pytrace=False)
        pytest.skip("docker-registry not installed (oracle/registry tier)")
    workdir = tmp_path_factory.mktemp("registry")
    server = _Registry(workdir)
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def client(reg: _Registry) -> Iterator[RegistryClient]:
    with RegistryClient(reg.host) as c:
        yield c


# -- against the real registry ------------------------------------------------------------------

def test_get_manifest_by_tag_and_digest(reg: _Registry, client: RegistryClient) -> None:
    pushed = reg.push_image("a/b", "v1")
    data, content_type, digest = client.get_manifest("a/b", "v1")
    assert data == pushed["bytes"]
    assert content_type == m.DOCKER_MANIFEST
    assert digest == pushed["digest"]
    again = client.get_manifest("a/b", pushed["digest"])
    assert again == (data, content_type, digest)


def test_unknown_tag(reg: _Registry, client: RegistryClient) -> None:
    reg.push_image("a/b", "v1")
    with pytest.raises(NotFound) as info:
        client.get_manifest("a/b", "v9")
    assert str(info.value) == f"manifest for {reg.host}/a/b:v9 not found: manifest unknown: manifest unknown"


def test_unknown_repository(reg: _Registry, client: RegistryClient) -> None:
    # distribution 2.8 answers MANIFEST_UNKNOWN for a repository it never saw (docker says the same).
    with pytest.raises(NotFound) as info:
        client.get_manifest("no/such", "latest")
    assert str(info.value) == f"manifest for {reg.host}/no/such:latest not found: manifest unknown: manifest unknown"


def test_unknown_blob(reg: _Registry, client: RegistryClient) -> None:
    missing = "sha256:" + "e" * 64
    with pytest.raises(NotFound) as info:
        with client.open_blob("a/b", missing):
            pass
    assert str(info.value) == f"blob {missing} in {reg.host}/a/b not found: blob unknown: blob unknown to registry"


def test_connection_refused() -> None:
    port = _free_port()
    with RegistryClient(f"127.0.0.1:{port}") as refused, pytest.raises(RegistryError) as info:
        refused.get_manifest("a/b", "v1")
    message = str(info.value)
    assert message.startswith(f'Get "http://127.0.0.1:{port}/v2/a/b/manifests/v1": cannot connect to 127.0.0.1:{port}')
    assert "refused" in message and "\n" not in message


def test_blob_streaming(reg: _Registry, client: RegistryClient) -> None:
    data = os.urandom(3 * (1 << 20) + 12345)
    digest = reg.push_blob("stream/blob", data)
    with client.open_blob("stream/blob", digest) as blob:
        assert blob.size == len(data)
        chunks = list(blob.iter_chunks(1 << 20))
    assert b"".join(chunks) == data
    assert all(0 < len(c) <= 1 << 20 for c in chunks)
    with client.open_blob("stream/blob", digest) as blob:
        small = list(blob.iter_chunks(1000))
    assert b"".join(small) == data and max(len(c) for c in small) == 1000


def test_fetch_blob_limits_and_verifies(reg: _Registry, client: RegistryClient) -> None:
    digest = reg.push_blob("fetch/blob", b"x" * 1000)
    assert client.fetch_blob("fetch/blob", digest, 1000) == b"x" * 1000
    with pytest.raises(ManifestError, match="larger than the 999-byte limit"):
        client.fetch_blob("fetch/blob", digest, 999)


def test_manifest_digest_mismatch(reg: _Registry, client: RegistryClient) -> None:
    pushed = reg.push_image("bad/manifest", "v1")
    # Same JSON, other bytes: the registry serves them as is, under the old digest.
    reg.blob_path(pushed["digest"]).write_bytes(json.dumps(pushed["doc"]).encode())
    with pytest.raises(DigestMismatch) as info:
        client.get_manifest("bad/manifest", pushed["digest"])
    assert str(info.value).startswith(f"manifest {pushed['digest']} of {reg.host}/bad/manifest does not match")
    with pytest.raises(NotFound):
        client.get_manifest("bad/manifest", "sha256:" + "0" * 64)


def test_source_resolves_a_plain_manifest(reg: _Registry) -> None:
    pushed = reg.push_image("plain/img", "v1", media_type=m.OCI_MANIFEST, config_type=m.OCI_CONFIG,
                            layer_type=m.OCI_LAYER_GZIP)
    ref = parse_reference(f"{reg.host}/plain/img:v1")
    with RegistrySource(ref, Platform("linux", "amd64")) as source:
        image = source.resolve()
        assert image.manifest_digest == pushed["digest"]
        assert image.manifest_bytes == pushed["bytes"]
        assert image.repository == f"{reg.host}/plain/img"
        assert image.config_bytes == pushed["config"]
        assert image.config_digest == pushed["config_digest"]
        assert [layer.digest for layer in image.layers] == [d["digest"] for d in pushed["doc"]["layers"]]
        with source.open_layer(image.layers[0]) as blob:
            assert b"".join(blob.iter_chunks()) == b"layer-one"


def test_source_selects_platform_from_index(reg: _Registry) -> None:
    amd = reg.push_image("multi/img", "amd", arch="amd64", layers=(b"amd-layer",))
    arm = reg.push_image("multi/img", "arm", arch="arm64", layers=(b"arm-layer",))
    attestation = reg.push_image("multi/img", "att", media_type=m.OCI_MANIFEST,
                                 config_type="application/vnd.oci.image.config.v1+json",
                                 layer_type="application/vnd.in-toto+json", layers=(b"{}",))
    entries = [
        {"mediaType": m.DOCKER_MANIFEST, "digest": amd["digest"], "size": len(amd["bytes"]),
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": m.OCI_MANIFEST, "digest": attestation["digest"], "size": len(attestation["bytes"]),
         "platform": {"os": "unknown", "architecture": "unknown"}},
        {"mediaType": m.DOCKER_MANIFEST, "digest": arm["digest"], "size": len(arm["bytes"]),
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    ]
    index_bytes, index_digest = reg.push_manifest(
        "multi/img", "latest", {"schemaVersion": 2, "mediaType": m.DOCKER_MANIFEST_LIST, "manifests": entries})

    for platform, expected in [(Platform("linux", "arm64"), arm), (Platform("linux", "amd64"), amd)]:
        with RegistrySource(parse_reference(f"{reg.host}/multi/img"), platform) as source:
            image = source.resolve()
        assert image.manifest_digest == index_digest
        assert image.manifest_bytes == expected["bytes"]
        assert image.config_digest == expected["config_digest"]
        assert json.loads(image.config_bytes)["architecture"] == platform.architecture

    by_digest = parse_reference(f"{reg.host}/multi/img@{index_digest}")
    with RegistrySource(by_digest, Platform("linux", "arm64")) as source:
        assert source.resolve().manifest_digest == index_digest

    with RegistrySource(parse_reference(f"{reg.host}/multi/img"), Platform("linux", "s390x")) as source:
        with pytest.raises(ManifestError) as info:
            source.resolve()
    assert str(info.value) == "no matching manifest for linux/s390x in the manifest list entries"
    assert index_bytes


def test_source_refuses_artifacts(reg: _Registry) -> None:
    reg.push_image("art/img", "sig", media_type=m.OCI_MANIFEST, config_type=m.OCI_CONFIG,
                   layer_type="application/vnd.dev.cosign.simplesigning.v1+json")
    with RegistrySource(parse_reference(f"{reg.host}/art/img:sig"), Platform("linux", "amd64")) as source:
        with pytest.raises(ManifestError, match='unsupported media type "application/vnd.dev.cosign'):
            source.resolve()


def test_source_config_digest_mismatch(reg: _Registry) -> None:
    pushed = reg.push_image("bad/config", "v1")
    reg.blob_path(pushed["config_digest"]).write_bytes(b'{"architecture":"evil","os":"linux"}')
    with RegistrySource(parse_reference(f"{reg.host}/bad/config:v1"), Platform("linux", "amd64")) as source:
        with pytest.raises(DigestMismatch) as info:
            source.resolve()
    assert str(info.value).startswith(f"blob {pushed['config_digest']} of {reg.host}/bad/config does not match")


def test_source_config_must_be_an_object(reg: _Registry) -> None:
    config = b"[1, 2]"
    digest = reg.push_blob("list/config", config)
    reg.push_manifest("list/config", "v1", {
        "schemaVersion": 2, "mediaType": m.DOCKER_MANIFEST,
        "config": {"mediaType": m.DOCKER_CONFIG, "digest": digest, "size": len(config)}, "layers": []})
    with RegistrySource(parse_reference(f"{reg.host}/list/config:v1"), Platform("linux", "amd64")) as source:
        with pytest.raises(ManifestError, match=f"invalid image config {digest}: not a JSON object"):
            source.resolve()


@pytest.mark.parametrize("declared", [9 << 20, 100])
def test_source_refuses_big_config(reg: _Registry, declared: int) -> None:
    # Refused from the declared size, or while reading when the manifest understates it.
    config = b"{}" + b" " * (9 << 20)
    digest = reg.push_blob("big/config", config)
    reg.push_manifest("big/config", "v1", {
        "schemaVersion": 2, "mediaType": m.DOCKER_MANIFEST,
        "config": {"mediaType": m.DOCKER_CONFIG, "digest": digest, "size": declared}, "layers": []})
    with RegistrySource(parse_reference(f"{reg.host}/big/config:v1"), Platform("linux", "amd64")) as source:
        with pytest.raises(ManifestError, match=f"{digest} of .* is larger than the 8388608-byte limit; refusing it"):
            source.resolve()


def test_parallel_use(reg: _Registry, client: RegistryClient) -> None:
    blobs = [os.urandom(200_000) for _ in range(8)]
    digests = [reg.push_blob("par/blobs", b) for b in blobs]
    results: dict[int, bytes] = {}

    def fetch(i: int) -> None:
        results[i] = client.fetch_blob("par/blobs", digests[i], 1 << 20)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [results[i] for i in range(8)] == blobs


# -- auth, redirects and odd answers, against a tiny fake registry on loopback ------------------

SAME_HOST_BLOB = "sha256:" + "2" * 64


class _FakeRegistry:
    """Answers like a token-protected registry; records what it was sent."""

    def __init__(self) -> None:
        self.valid_token = "tok-1"
        self.reject_all = False  # refuse even the tokens it hands out
        self.token_requests: list[str] = []
        self.blob_auth: list[str | None] = []
        self.manifest = json.dumps({"schemaVersion": 2, "mediaType": m.DOCKER_MANIFEST,
                                    "config": {"mediaType": m.DOCKER_CONFIG, "digest": "sha256:" + "1" * 64,
                                               "size": 2}, "layers": []}).encode()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                fake.handle(self)

        self.main = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.other = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # a second origin (blob storage)
        self.host = f"127.0.0.1:{self.main.server_address[1]}"
        self.other_host = f"127.0.0.1:{self.other.server_address[1]}"
        self.threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True)
                        for s in (self.main, self.other)]
        for t in self.threads:
            t.start()

    def challenge(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer realm="http://{self.host}/token",service="fake",'
                                    f'scope="repository:a/b:pull"'}

    def handle(self, h) -> None:
        path, auth = h.path, h.headers.get("Authorization")
        if path.startswith("/token"):
            self.token_requests.append(path)
            h.reply(200, json.dumps({"access_token": self.valid_token, "expires_in": 300}).encode())
        elif path.startswith("/storage/"):
            self.blob_auth.append(auth)
            h.reply(200, b"{}")
        elif path == "/v2/slow/manifests/v1":
            time.sleep(1.5)
            h.reply(200, b"{}")
        elif path == "/v2/broken/manifests/v1":
            h.reply(500, b'{"errors":[{"code":"UNKNOWN","message":"disk on fire"}]}')
        elif self.reject_all or auth != f"Bearer {self.valid_token}":
            h.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                    self.challenge())
        elif path == "/v2/denied/manifests/v1":
            h.reply(403, b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}')
        elif path.startswith("/v2/a/b/manifests/"):
            h.reply(200, self.manifest, {"Content-Type": m.DOCKER_MANIFEST})
        elif path == f"/v2/a/b/blobs/{SAME_HOST_BLOB}":
            h.reply(307, headers={"Location": "/storage/same"})
        elif path.startswith("/v2/a/b/blobs/"):
            h.reply(307, headers={"Location": f"http://{self.other_host}/storage/blob"})
        else:
            h.reply(404)

    def stop(self) -> None:
        for server in (self.main, self.other):
            server.shutdown()
            server.server_close()


@pytest.fixture
def fake() -> Iterator[_FakeRegistry]:
    server = _FakeRegistry()
    yield server
    server.stop()


def test_bearer_token_flow_and_cache(fake: _FakeRegistry) -> None:
    with RegistryClient(fake.host) as c:
        data, content_type, _ = c.get_manifest("a/b", "v1")
        assert data == fake.manifest and content_type == m.DOCKER_MANIFEST
        c.get_manifest("a/b", "v2")
        assert len(fake.token_requests) == 1
        assert "scope=repository%3Aa%2Fb%3Apull" in fake.token_requests[0]
        assert "service=fake" in fake.token_requests[0]
        fake.valid_token = "tok-2"  # the cached token is now refused: refreshed once
        c.get_manifest("a/b", "v3")
        assert len(fake.token_requests) == 2


def test_redirect_drops_authorization_for_another_host(fake: _FakeRegistry) -> None:
    with RegistryClient(fake.host) as c:
        with c.open_blob("a/b", "sha256:" + "1" * 64) as blob:
            assert b"".join(blob.iter_chunks()) == b"{}"
    assert fake.blob_auth == [None]


def test_redirect_keeps_authorization_on_the_same_host(fake: _FakeRegistry) -> None:
    with RegistryClient(fake.host) as c:
        c.get_manifest("a/b", "v1")
        with c.open_blob("a/b", SAME_HOST_BLOB) as blob:
            assert b"".join(blob.iter_chunks()) == b"{}"
    assert fake.blob_auth == ["Bearer tok-1"]


def test_401_after_auth_is_access_denied(fake: _FakeRegistry) -> None:
    fake.reject_all = True
    fake_ref = parse_reference(f"{fake.host}/x/y:v1")
    with RegistryClient.for_reference(fake_ref) as c, pytest.raises(NotFound) as info:
        c.get_manifest("x/y", "v1")
    assert len(fake.token_requests) == 1
    assert str(info.value) == (
        f"pull access denied for {fake.host}/x/y, repository does not exist or may require 'emustore login': "
        "unauthorized: authentication required"
    )


def test_403_denied(fake: _FakeRegistry) -> None:
    with RegistryClient(fake.host) as c, pytest.raises(NotFound) as info:
        c.get_manifest("denied", "v1")
    assert str(info.value) == (
        f"pull access denied for {fake.host}/denied, repository does not exist or may require 'emustore login': "
        "denied: requested access to the resource is denied"
    )


def test_server_error(fake: _FakeRegistry) -> None:
    with RegistryClient(fake.host) as c, pytest.raises(RegistryError) as info:
        c.get_manifest("broken", "v1")
    assert str(info.value) == (
        f'Get "http://{fake.host}/v2/broken/manifests/v1": registry answered HTTP 500 Internal Server Error: '
        "unknown: disk on fire"
    )


def test_timeout(fake: _FakeRegistry) -> None:
    with RegistryClient(fake.host, timeout=0.3) as c, pytest.raises(RegistryError) as info:
        c.get_manifest("slow", "v1")
    assert str(info.value).startswith(f'Get "http://{fake.host}/v2/slow/manifests/v1": timed out')


def test_docker_hub_names_in_messages() -> None:
    c = RegistryClient.for_reference(parse_reference("nginx"))
    assert (c.host, c.base_url, c._familiar("library/nginx")) == (
        "registry-1.docker.io", "https://registry-1.docker.io", "nginx")
    c.close()


@pytest.mark.parametrize(
    ("host", "insecure"),
    [("localhost", True), ("localhost:5000", True), ("127.0.0.1", True), ("127.1.2.3:80", True),
     ("[::1]", True), ("[::1]:5000", True), ("example.com", False), ("10.0.0.1:5000", False),
     ("localhost.example.com", False)],
)
def test_default_insecure(host: str, insecure: bool) -> None:
    assert is_default_insecure(host) is insecure


def test_parse_www_authenticate() -> None:
    assert parse_www_authenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull,push", Basic realm="basic \\"x\\""'
    ) == [
        Challenge("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                             "scope": "repository:library/nginx:pull,push"}),
        Challenge("basic", {"realm": 'basic "x"'}),
    ]
    assert parse_www_authenticate(["Basic realm=plain", "Bearer realm=x"]) == [
        Challenge("basic", {"realm": "plain"}), Challenge("bearer", {"realm": "x"})]
    assert parse_www_authenticate("") == []



def test_foreign_layer_is_fetched_from_the_registry_by_digest() -> None:
    """dockerd 20.10 on Linux ignores a foreign layer's urls and asks the registry for the digest."""
    allow_urls = {"validation": {"manifests": {"urls": {"allow": ["^http://"]}}}}
    with RegistryServer(config_override=allow_urls) as server, PushClient(server.host) as push:
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
        foreign = b"foreign-layer"
        doc = {"schemaVersion": 2, "mediaType": m.DOCKER_MANIFEST,
               "config": {"mediaType": m.DOCKER_CONFIG, "digest": push.put_blob("f/img", config), "size": len(config)},
               "layers": [{"mediaType": m.DOCKER_FOREIGN_LAYER, "digest": push.put_blob("f/img", foreign),
                           "size": len(foreign), "urls": [f"http://127.0.0.1:{_free_port()}/never"]}]}
        push.put_manifest("f/img", "v1", m.DOCKER_MANIFEST, json.dumps(doc).encode())
        with RegistrySource(parse_reference(f"{server.host}/f/img:v1"), Platform("linux", "amd64")) as source:
            [layer] = source.resolve().layers
            assert layer.urls and layer.media_type == m.DOCKER_FOREIGN_LAYER
            with source.open_layer(layer) as blob:
                assert b"".join(blob.iter_chunks()) == foreign
