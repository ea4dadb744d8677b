"""Minimal Distribution API push client (blobs and manifests) for test registries on loopback."""

from __future__ import annotations

import hashlib

import httpx


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class PushClient:
    """Pushes to `http://<host>` (a 127.0.0.0/8 registry without auth)."""

    def __init__(self, host: str, *, timeout: float = 60.0) -> None:
        if not host.startswith("127."):
            raise ValueError(f"test registries live on 127.0.0.0/8, not {host}")
        self.base = f"http://{host}"
        self.client = httpx.Client(base_url=self.base, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> PushClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put_blob(self, repository: str, data: bytes) -> str:
        """Monolithic upload (POST then PUT ?digest=), skipped when HEAD finds the blob."""
        digest = sha256_digest(data)
        if self.client.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
            return digest
        started = self.client.post(f"/v2/{repository}/blobs/uploads/")
        _expect(started, 202)
        location = httpx.URL(self.base).join(started.headers["Location"])
        done = self.client.put(
            location.copy_merge_params({"digest": digest}),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        _expect(done, 201)
        return digest

    def put_manifest(self, repository: str, reference: str, media_type: str, data: bytes) -> str:
        """PUT a manifest/index under a tag or digest; returns the digest of the bytes."""
        response = self.client.put(
            f"/v2/{repository}/manifests/{reference}",
            content=data,
            headers={"Content-Type": media_type},
        )
        _expect(response, 201)
        digest = sha256_digest(data)
        announced = response.headers.get("Docker-Content-Digest", digest)
        if announced != digest:
            raise RuntimeError(f"registry announced {announced} for manifest {digest}")
        return digest


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} -> {response.status_code}: "
            f"{response.text[:500]}"
        )
