"""A private containerd (1.6 Debian 12's, 1.7 and 2.1 from the engine cache) for the bbolt oracle tier.

Each daemon gets its own root, state dir, short socket path under /tmp and a config.toml naming
them; plugins that would touch anything outside (CRI, NRI, /opt) are disabled. It is stopped by the
pid of the process started here, never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.engines import engine_cache
from tests.support.tiers import require_binary

CONTAINERD_VERSIONS = ("1.6", "1.7", "2.1")
# plugins that would reach outside the daemon's own dirs (CRI: networks, /etc/cni; NRI: /var/run/nri;
# opt: /opt/containerd); names unknown to one version are ignored by it
DISABLED_PLUGINS = (
    "io.containerd.grpc.v1.cri",
    "io.containerd.cri.v1.images",
    "io.containerd.cri.v1.runtime",
    "io.containerd.nri.v1.nri",
    "io.containerd.internal.v1.opt",
    "io.containerd.tracing.processor.v1.otlp",
)
MISSING = "containerd %s not found at %s (bbolt oracle tier; CI=true makes this a failure)"


def binaries(version: str) -> tuple[Path, Path]:
    """containerd and ctr of `version` ("1.6": Debian 12's; "1.7", "2.1": Docker 26's and 28's in the cache)."""
    if version == "1.6":
        return Path("/usr/bin/containerd"), Path("/usr/bin/ctr")
    major = {"1.7": "26", "2.1": "28"}[version]
    bindir = engine_cache() / major / "root" / "usr" / "bin"
    return bindir / "containerd", bindir / "ctr"


def meta_db(root: Path) -> Path:
    """The metadata plugin's bbolt file under a containerd root."""
    return root / "io.containerd.metadata.v1.bolt" / "meta.db"


class Containerd:
    """containerd `version` on `root` (a dir of the test's); `ctr(...)` runs its ctr against it."""

    def __init__(self, version: str, root: Path) -> None:
        self.version = version
        self.binary, self.ctr_binary = binaries(version)
        require_binary(self.binary, MISSING % (version, self.binary))
        require_binary(self.ctr_binary, MISSING % (version, self.ctr_binary))
        self.root = root
        self.workdir = Path(tempfile.mkdtemp(prefix="ctd", dir="/tmp"))
        self.socket = self.workdir / "s"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ, PATH=f"{self._runtime_path()}:{os.environ.get('PATH', '')}")

    def _runtime_path(self) -> Path:
        """A dir put first on the daemon's PATH: this version's shim and Debian 12's runc (engines.md)."""
        bindir = self.workdir / "bin"
        bindir.mkdir(exist_ok=True)
        for name, target in (
            ("containerd-shim-runc-v2", self.binary.parent / "containerd-shim-runc-v2"),
            ("runc", Path("/usr/sbin/runc")),
        ):
            if target.exists() and not (bindir / name).exists():
                (bindir / name).symlink_to(target)
        return bindir

    def start(self) -> Containerd:
        """Start the daemon and wait until its socket answers (30 s)."""
        config = self.workdir / "config.toml"
        disabled = ", ".join('"%s"' % name for name in DISABLED_PLUGINS)
        config.write_text(
            f'version = 2\nroot = "{self.root}"\nstate = "{self.workdir / "state"}"\n'
            f"disabled_plugins = [{disabled}]\n"
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{self.socket}.t"\n'
            # collect only at start and when asked (images rm --sync): never between two ctr calls
            # (content ingested by one is unleased once it ends, until another labels it)
            '[plugins."io.containerd.gc.v1.scheduler"]\n  mutation_threshold = 1000000\n  deletion_threshold = 0\n'
        )
        log = open(self.workdir / "log", "wb")
        with log:
            self.process = subprocess.Popen(
                [str(self.binary), "--config", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env=self.env,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"containerd {self.version} exited: {self.log_tail()}")
            if self.socket.exists() and self.ctr("version", check=False):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"containerd {self.version} did not answer on {self.socket}: {self.log_tail()}")

    def ctr(self, *args: str, check: bool = True, stdin: bytes = b"") -> str:
        """Run `ctr -a SOCK args…` and return its output; raise with it when it fails and `check`."""
        done = subprocess.run(
            [str(self.ctr_binary), "-a", str(self.socket), *args], input=stdin, capture_output=True, timeout=60,
            env=self.env,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode(errors="replace") if done.returncode == 0 else ""

    def log_tail(self, lines: int = 20) -> str:
        path = self.workdir / "log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM the daemon by its pid (SIGKILL after 20 s) and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def cleanup(self) -> None:
        """Stop it and remove its work dir (the root is the test's)."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Containerd:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
