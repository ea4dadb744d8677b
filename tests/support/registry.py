"""A throw-away distribution registry (Debian's docker-registry 2.8) on a free loopback port."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REGISTRY_BINARY = Path("/usr/bin/docker-registry")


def base_config(storage: Path, addr: str) -> dict[str, Any]:
    """The default config: filesystem storage with deletes, listening on `addr`."""
    return {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": addr},
    }


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` merged in, mapping by mapping (other values replace)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RegistryServer:
    """`docker-registry serve` with its own storage dir and config; `stop()` ends it.

    `config_override` is merged into the default config (e.g. auth, http.tls, proxy); with
    http.tls the URL is https. Readiness is any answer below 500 on /v2/ (401 with auth), or a
    TLS handshake that fails for want of a client certificate.
    """

    def __init__(
        self,
        *,
        binary: Path = REGISTRY_BINARY,
        startup_timeout: float = 20.0,
        config_override: dict[str, Any] | None = None,
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="registry-"))
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log_path = self.workdir / "registry.log"
        settings = merge_config(base_config(self.workdir / "storage", self.host), config_override or {})
        self.url = f"{'https' if 'tls' in settings['http'] else 'http'}://{self.host}"
        config = self.workdir / "config.yml"
        config.write_text(json.dumps(settings, indent=2))  # YAML is a superset of JSON
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(binary), "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._wait_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/v2/", timeout=1.0, verify=False).status_code < 500:
                    return
            except httpx.TransportError as exc:
                if "certificate" in str(exc).lower():  # listening, but wants a client certificate
                    return
            time.sleep(0.1)
        raise RuntimeError(
            f"registry on {self.host} not ready after {timeout}s "
            f"(exit code {self.process.poll()}); log tail:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Kill the registry by pid, wait for it, remove its storage."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RegistryServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
