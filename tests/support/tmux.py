"""A private tmux server (own socket) to run a command on a real terminal and read its screen."""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

TMUX = Path("/usr/bin/tmux")


class TmuxScreen:
    """One detached session of `width`×`height` running `command`; `close()` ends the server."""

    def __init__(self, socket: Path, command: list[str], width: int = 160, height: int = 50) -> None:
        self.socket = socket
        # the pane stays open after the command ends, so its last screen can still be read
        shell = "%s; echo EXIT=$?; sleep 3600" % shlex.join(command)
        self._tmux("new-session", "-d", "-x", str(width), "-y", str(height), "sh", "-c", shell)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            [str(TMUX), "-S", str(self.socket), "-f", "/dev/null", *args],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout

    def screen(self) -> list[str]:
        """The visible lines, trailing blanks removed."""
        lines = [line.rstrip() for line in self._tmux("capture-pane", "-p").split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def wait_for(self, text: str, timeout: float = 300) -> list[str]:
        """The screen once a line starts with `text` (raises after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.screen()
            if any(line.startswith(text) for line in lines):
                return lines
            if time.monotonic() > deadline:
                raise TimeoutError("%r never appeared; screen:\n%s" % (text, "\n".join(lines)))
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run([str(TMUX), "-S", str(self.socket), "kill-server"], capture_output=True, timeout=60)
