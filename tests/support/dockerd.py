"""A private Docker Engine daemon (20.10, 26 or 28; overlay2) on its own data root, socket and exec root."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from errno import EINVAL, ENOENT
from pathlib import Path

import httpx

from tests.support.engines import SYSTEM_DOCKERD, Engine, find_engine

DOCKERD_BINARY = SYSTEM_DOCKERD
DOCKER_CLI = Path("/usr/bin/docker")  # /usr/local/bin/docker is too new for API 1.41
MNT_DETACH = 2
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; containerd appends ".ttrpc" to its socket


class DockerCommandError(subprocess.CalledProcessError):
    """A failed docker CLI call; the message carries stderr and the daemon's log tail."""

    def __init__(self, result: subprocess.CompletedProcess[str], log_tail: str) -> None:
        super().__init__(result.returncode, result.args, result.stdout, result.stderr)
        self.log_tail = log_tail

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {self.stderr}\ndockerd log tail:\n{self.log_tail}"


class Dockerd:
    """Starts `dockerd` of `engine` (default: the system's 20.10) at construction; `stop()` (or
    leaving the `with` block) ends it, by pid.

    `workdir` must be a short path: it holds the API socket, pidfile, log, daemon.json, the
    CLI config dir and the exec root (whose containerd socket must fit a unix socket path)."""

    def __init__(
        self, data_root: Path, workdir: Path, *, engine: Engine | None = None, startup_timeout: float = 60.0,
        containerd_store: bool = False,
    ) -> None:
        self.engine = engine or find_engine("20.10")
        self.data_root = Path(data_root).absolute()
        self.workdir = Path(workdir).absolute()
        self.exec_root = self.workdir / "x"
        self.socket = self.workdir / "d.sock"
        self.pidfile = self.workdir / "d.pid"
        self.log_path = self.workdir / "dockerd.log"
        self.cli_config = self.workdir / "cli"
        containerd_socket = self.exec_root / "containerd" / "containerd.sock.ttrpc"
        if len(str(containerd_socket)) > SOCKET_PATH_MAX:
            raise ValueError(f"workdir {self.workdir} is too long for unix sockets under it")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cli_config.mkdir(exist_ok=True)
        config_file = self.workdir / "daemon.json"
        # the containerd image store (Docker 29's default): images go to <data-root>/containerd/daemon
        config_file.write_text('{"features": {"containerd-snapshotter": true}}' if containerd_store else "{}")
        driver = [] if containerd_store else ["--storage-driver", "overlay2"]
        self.client = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self.socket)), base_url="http://docker", timeout=120
        )
        env = {key: value for key, value in os.environ.items() if not key.startswith("DOCKER_")}
        env["MOBY_DISABLE_PIGZ"] = "true"  # Go gzip even if unpigz gets installed (spec §2.2)
        if self.engine.path_dir is not None:  # its containerd, shim and ctr; Debian 12's runc
            env["PATH"] = f"{self.engine.path_dir}:{env.get('PATH', os.defpath)}"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.engine.dockerd),
                    "--config-file", str(config_file),
                    "--data-root", str(self.data_root),
                    "--exec-root", str(self.exec_root),
                    "-H", f"unix://{self.socket}",
                    "--pidfile", str(self.pidfile),
                    "--iptables=false",
                    "--bridge=none",
                    *driver,
                    "--log-level", "warn",
                    *self.engine.flags,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        try:
            self._wait_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.client.get("/_ping", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"dockerd {self.engine.version} on {self.data_root} not ready (exit code {self.process.poll()}); "
            f"log tail:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def docker(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run `/usr/bin/docker -H unix://<socket> ARGS`, capturing text output."""
        result = subprocess.run(
            [str(DOCKER_CLI), "-H", f"unix://{self.socket}", *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            env={**os.environ, "DOCKER_CONFIG": str(self.cli_config)},
        )
        if check and result.returncode != 0:
            raise DockerCommandError(result, self.log_tail())
        return result

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """An Engine API request over the unix socket, e.g. api("GET", "/v1.41/images/json")."""
        return self.client.request(method, path, **kwargs)  # type: ignore[arg-type]

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the pidfile's pid, SIGKILL after `timeout`, then unmount leftovers."""
        self.client.close()
        if self.process.poll() is None:
            pid = _read_pid(self.pidfile) or self.process.pid
            os.kill(pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        # The managed containerd gets SIGKILL with dockerd (parent-death signal); a killed dockerd
        # leaves its self bind mount of the data root behind.
        unmount_under(self.data_root, self.exec_root)

    def __enter__(self) -> Dockerd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def mount_points() -> list[Path]:
    """Mount points of this mount namespace (from /proc/self/mountinfo, octal escapes decoded)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        raw = line.split(" ")[4]
        points.append(Path(raw.encode().decode("unicode_escape")))
    return points


def unmount_under(*roots: Path) -> None:
    """Lazily unmount everything at or below `roots`, deepest first."""
    libc = ctypes.CDLL(None, use_errno=True)
    stale = [p for p in mount_points() if any(p == r or r in p.parents for r in roots)]
    for point in sorted(stale, key=lambda p: len(p.parts), reverse=True):
        if libc.umount2(str(point).encode(), MNT_DETACH) != 0:
            errno = ctypes.get_errno()
            if errno not in (EINVAL, ENOENT):  # already gone (stacked or parent detached)
                raise OSError(errno, f"umount2({point}): {os.strerror(errno)}")
