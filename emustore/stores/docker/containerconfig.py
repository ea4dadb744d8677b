"""config.v2.json and hostconfig.json of a container as `docker create` (CLI 20.10) makes dockerd write them.

Field order, defaults and the merge of the image's config follow what dockerd 20.10 wrote in
docs/container-format.md; only ID, Created, Name, the image and the user's options vary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from emustore.errors import EmustoreError
from emustore.gojson import go_json, sorted_map
from emustore.stores.docker.goconfig import ZERO_TIME, rfc3339nano

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
SHM_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class CreateOptions:
    """What the user asked `create` for (None: not given, so the image's value applies)."""

    image_text: str  # the image as typed: Config.Image keeps it
    name: str | None = None
    env: tuple[str, ...] = ()
    entrypoint: str | None = None  # --entrypoint takes one string ("" clears the image's)
    cmd: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerDocs:
    config_v2: bytes
    hostconfig: bytes


def _env_key(entry: str) -> str:
    return entry.split("=", 1)[0]


class NoCommand(EmustoreError):
    """Neither the image nor the options give a command to run."""


def command_of(options: CreateOptions, image_config: dict[str, Any]) -> tuple[list[str] | None, list[str] | None]:
    """(Entrypoint, Cmd) after the merge: --entrypoint drops the image's Cmd too."""
    if options.entrypoint is not None:
        entrypoint = [options.entrypoint] if options.entrypoint else None
        cmd: list[str] | None = list(options.cmd) or None
    else:
        entrypoint = image_config.get("Entrypoint")
        cmd = list(options.cmd) if options.cmd else image_config.get("Cmd")
    if not entrypoint and not cmd:
        raise NoCommand("No command specified")
    return entrypoint, cmd


def merged_config(options: CreateOptions, image_config: dict[str, Any], hostname: str) -> dict[str, Any]:
    """container.Config after dockerd merges the image's config into the CLI's (daemon merge rules)."""
    user_env = list(options.env)
    keys = {_env_key(e) for e in user_env}
    env = user_env + [e for e in image_config.get("Env") or [] if _env_key(e) not in keys]
    entrypoint, cmd = command_of(options, image_config)
    labels = dict(image_config.get("Labels") or {})
    config: dict[str, Any] = {
        "Hostname": hostname,
        "Domainname": "",
        "User": image_config.get("User", ""),
        "AttachStdin": False,
        "AttachStdout": True,
        "AttachStderr": True,
    }
    if image_config.get("ExposedPorts"):
        config["ExposedPorts"] = image_config["ExposedPorts"]
    config.update({"Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": env, "Cmd": cmd})
    if image_config.get("Healthcheck") is not None:
        config["Healthcheck"] = image_config["Healthcheck"]
    config.update(
        {
            "Image": options.image_text,
            "Volumes": image_config.get("Volumes"),
            "WorkingDir": image_config.get("WorkingDir", ""),
            "Entrypoint": entrypoint,
            "OnBuild": None,
            "Labels": sorted_map(labels),
        }
    )
    if image_config.get("StopSignal"):
        config["StopSignal"] = image_config["StopSignal"]
    return config


def _network_settings(anonymous: bool) -> dict[str, Any]:
    endpoint = {
        "IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None, "IPAMOperational": False,
    }
    return {
        "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Networks": {"bridge": endpoint}, "Service": None, "Ports": None,
        "SandboxKey": "", "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "IsAnonymousEndpoint": anonymous, "HasSwarmEndpoint": False,
    }


def config_v2(
    container_id: str, created: str, name: str, named: bool, image_id: str, config: dict[str, Any]
) -> dict[str, Any]:
    """container.Container of a Created container, in dockerd's field order."""
    command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    state = {
        "Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
        "RemovalInProgress": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
        "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME, "Health": None,
    }
    return {
        "StreamConfig": {}, "State": state, "ID": container_id, "Created": created, "Managed": False,
        "Path": command[0] if command else "", "Args": command[1:], "Config": config, "Image": image_id,
        "NetworkSettings": _network_settings(anonymous=not named), "LogPath": "", "Name": "/" + name,
        "Driver": "overlay2", "OS": "linux", "MountLabel": "", "ProcessLabel": "", "RestartCount": 0,
        "HasBeenStartedBefore": False, "HasBeenManuallyStopped": False, "MountPoints": {},
        "SecretReferences": None, "ConfigReferences": None, "AppArmorProfile": "", "HostnamePath": "",
        "HostsPath": "", "ShmPath": "", "ResolvConfPath": "", "SeccompProfile": "",
        "NoNewPrivileges": False, "LocalLogCacheMeta": {"HaveNotifyEnabled": False},
    }


def cgroupns_mode() -> str:
    """dockerd's default cgroup namespace mode: "private" on a cgroup v2 host, else "host"."""
    return "private" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "host"


def host_config() -> dict[str, Any]:
    """HostConfig as the docker CLI sends it with no options and dockerd completes it."""
    return {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
        "CgroupnsMode": cgroupns_mode(), "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
        "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0,
        "PidMode": "", "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
        "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": SHM_SIZE, "Runtime": "runc",
        "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
        "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": None,
        "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None,
        "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "",
        "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None,
        "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": None,
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "MaskedPaths": list(MASKED_PATHS), "ReadonlyPaths": list(READONLY_PATHS),
    }


def container_docs(
    options: CreateOptions, container_id: str, created_ns: int, name: str, image_id: str,
    image_config: dict[str, Any],
) -> ContainerDocs:
    """The bytes of config.v2.json and hostconfig.json (Go JSON and a newline, as json.Encoder writes)."""
    config = merged_config(options, image_config, container_id[:12])
    doc = config_v2(container_id, rfc3339nano(created_ns), name, options.name is not None, image_id, config)
    return ContainerDocs((go_json(doc) + "\n").encode(), (go_json(host_config()) + "\n").encode())
