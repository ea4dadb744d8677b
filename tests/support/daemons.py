"""Daemons started for one fixture: any engine, each on its own short work dir, all stopped by pid."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.support.dockerd import DOCKER_CLI, Dockerd
from tests.support.engines import Engine, find_engine
from tests.support.tiers import require_binary, require_engine

CLI_MISSING = "docker CLI 20.10 not installed (oracle tier; CI=true makes this a failure)"
STARTED: dict[str, str] = {}  # engine version -> its exact versions, for the test output's summary


class Daemons:
    """`start(version, data_root)` starts engine `version`'s dockerd on `data_root` (an engine
    that is not here fails the test under CI=true and skips it otherwise); `stop()` ends them all
    and removes their work dirs."""

    def __init__(self) -> None:
        self.started: list[Dockerd] = []

    @staticmethod
    def require(version: str) -> Engine:
        """Engine `version` with the CLI, or the test fails (CI=true) or is skipped."""
        found = find_engine(version)
        require_engine(found)
        require_binary(DOCKER_CLI, CLI_MISSING)
        return found

    def start(self, version: str, data_root: Path, containerd_store: bool = False) -> Dockerd:
        found = self.require(version)
        workdir = Path(tempfile.mkdtemp(prefix="dk", dir="/tmp"))
        try:
            daemon = Dockerd(data_root, workdir, engine=found, containerd_store=containerd_store)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        self.started.append(daemon)
        if version not in STARTED:
            STARTED[version] = found.versions()
        return daemon

    def stop(self) -> None:
        for daemon in self.started:
            daemon.stop()
            shutil.rmtree(daemon.workdir, ignore_errors=True)
