"""A container's State (config.v2.json) as dockerd 20.10 words it in `docker ps`'s STATUS column.

Running wins over the rest (Paused, then Restarting, then a health status, else "Up");
then "Removal In Progress", "Dead", "Created" (never started), "Exited (CODE) X ago". The
durations are go-units' HumanDuration of the time since StartedAt or FinishedAt.
"""

from __future__ import annotations

import time
from typing import Any

from emustore.display import human_duration
from emustore.stores.docker.goconfig import ZERO, ConfigTypeError, GoTime


def _state(doc: dict[str, Any]) -> dict[str, Any]:
    state = doc.get("State")
    return state if isinstance(state, dict) else {}


def _time(state: dict[str, Any], key: str) -> GoTime:
    try:
        return GoTime.parse(str(state.get(key) or ""))
    except ConfigTypeError:
        return ZERO


def _exit_code(state: dict[str, Any]) -> int:
    code = state.get("ExitCode")
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def is_running(doc: dict[str, Any]) -> bool:
    """What `docker ps` without -a lists (paused and restarting containers are running too)."""
    return _state(doc).get("Running") is True


def status(doc: dict[str, Any], now: float | None = None) -> str:
    """The STATUS column for the container document `doc` at `now` (Unix seconds)."""
    state = _state(doc)
    now = time.time() if now is None else now
    started, finished = _time(state, "StartedAt"), _time(state, "FinishedAt")
    if state.get("Running") is True:
        up = human_duration(now - started.timestamp)
        if state.get("Paused") is True:
            return "Up %s (Paused)" % up
        if state.get("Restarting") is True:
            return "Restarting (%d) %s ago" % (_exit_code(state), human_duration(now - finished.timestamp))
        health = state.get("Health")
        if isinstance(health, dict) and health.get("Status"):
            shown = "health: starting" if health["Status"] == "starting" else str(health["Status"])
            return "Up %s (%s)" % (up, shown)
        return "Up %s" % up
    if state.get("RemovalInProgress") is True:
        return "Removal In Progress"
    if state.get("Dead") is True:
        return "Dead"
    if started.unix == ZERO.unix:
        return "Created"
    if finished.unix == ZERO.unix:
        return ""
    return "Exited (%d) %s ago" % (_exit_code(state), human_duration(now - finished.timestamp))
