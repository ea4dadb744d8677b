"""config.v2.json and hostconfig.json of a container as `docker create` (CLI 20.10) makes dockerd write them.

Field order, defaults and the merge of the image's config follow what dockerd 20.10, 26 and 28
wrote in docs/container-format.md (the engine's dialect picks the layout); only ID, Created,
Name, the image and the user's options vary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from emustore.engines import DEFAULT, Dialect
from emustore.errors import EmustoreError
from emustore.gojson import go_json, sorted_map
from emustore.stores.docker.goconfig import ZERO_TIME, DecodedImage, rfc3339nano

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


def command_of(
    options: CreateOptions, image_config: dict[str, Any], dialect: Dialect = DEFAULT
) -> tuple[list[str] | None, list[str] | None]:
    """(Entrypoint, Cmd) after the merge: --entrypoint drops the image's Cmd too."""
    if options.entrypoint is not None:
        entrypoint = [options.entrypoint] if options.entrypoint else None
        cmd: list[str] | None = list(options.cmd) or None
    else:
        entrypoint = image_config.get("Entrypoint")
        cmd = list(options.cmd) if options.cmd else image_config.get("Cmd")
    if not entrypoint and not cmd:
        raise NoCommand(dialect.no_command_error)
    return entrypoint, cmd


def merged_config(
    options: CreateOptions, image_config: dict[str, Any], hostname: str, dialect: Dialect = DEFAULT
) -> dict[str, Any]:
    """container.Config after dockerd merges the image's config (as the engine decodes it) into the
    CLI's (daemon merge rules, the same in 20.10, 26 and 28)."""
    user_env = list(options.env)
    keys = {_env_key(e) for e in user_env}
    env = user_env + [e for e in image_config.get("Env") or [] if _env_key(e) not in keys]
    entrypoint, cmd = command_of(options, image_config, dialect)
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


# The field order of each engine's structs (observed: docs/container-format.md §2, §3, §9). A
# layout names every field it writes; the values come from one table holding all engines' fields.
_STATE = (
    "Running", "Paused", "Restarting", "OOMKilled", "RemovalInProgress", "Dead", "Pid", "ExitCode", "Error",
    "StartedAt", "FinishedAt", "Health",
)
_ENDPOINT_20 = (
    "IPAMConfig", "Links", "Aliases", "NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen",
    "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress", "DriverOpts", "IPAMOperational",
)
_ENDPOINT_26 = (
    "IPAMConfig", "Links", "Aliases", "MacAddress", "NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen",
    "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "DriverOpts", "DNSNames", "IPAMOperational",
    "DesiredMacAddress",
)
_ENDPOINT_28 = (
    "IPAMConfig", "Links", "Aliases", "MacAddress", "DriverOpts", "GwPriority", "NetworkID", "EndpointID", "Gateway",
    "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "DNSNames",
    "IPAMOperational", "DesiredMacAddress",
)
_NETWORK_20 = (
    "Bridge", "SandboxID", "HairpinMode", "LinkLocalIPv6Address", "LinkLocalIPv6PrefixLen", "Networks", "Service",
    "Ports", "SandboxKey", "SecondaryIPAddresses", "SecondaryIPv6Addresses", "IsAnonymousEndpoint", "HasSwarmEndpoint",
)
_NETWORK_26 = (
    "Bridge", "SandboxID", "SandboxKey", "HairpinMode", "LinkLocalIPv6Address", "LinkLocalIPv6PrefixLen", "Networks",
    "Service", "Ports", "SecondaryIPAddresses", "SecondaryIPv6Addresses", "HasSwarmEndpoint",
)
_CONTAINER_20 = (
    "StreamConfig", "State", "ID", "Created", "Managed", "Path", "Args", "Config", "Image", "NetworkSettings",
    "LogPath", "Name", "Driver", "OS", "MountLabel", "ProcessLabel", "RestartCount", "HasBeenStartedBefore",
    "HasBeenManuallyStopped", "MountPoints", "SecretReferences", "ConfigReferences", "AppArmorProfile",
    "HostnamePath", "HostsPath", "ShmPath", "ResolvConfPath", "SeccompProfile", "NoNewPrivileges", "LocalLogCacheMeta",
)
_CONTAINER_26 = (
    "StreamConfig", "State", "ID", "Created", "Managed", "Path", "Args", "Config", "Image", "ImageManifest",
    "NetworkSettings", "LogPath", "Name", "Driver", "OS", "RestartCount", "HasBeenStartedBefore",
    "HasBeenManuallyStopped", "MountPoints", "SecretReferences", "ConfigReferences", "MountLabel", "ProcessLabel",
    "AppArmorProfile", "SeccompProfile", "NoNewPrivileges", "HostnamePath", "HostsPath", "ShmPath", "ResolvConfPath",
    "LocalLogCacheMeta",
)
# 28: ImagePlatform after OS, WritableCgroups after NoNewPrivileges
_CONTAINER_28 = (
    *_CONTAINER_26[:15], "ImagePlatform", *_CONTAINER_26[15:26], "WritableCgroups", *_CONTAINER_26[26:],
)
_HOST_20 = (
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
    "VolumeDriver", "VolumesFrom", "CapAdd", "CapDrop", "CgroupnsMode", "Dns", "DnsOptions", "DnsSearch",
    "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj", "PidMode", "Privileged",
    "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "UTSMode", "UsernsMode", "ShmSize", "Runtime",
    "ConsoleSize", "Isolation", "CpuShares", "Memory", "NanoCpus", "CgroupParent", "BlkioWeight",
    "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps",
    "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Devices",
    "DeviceCgroupRules", "DeviceRequests", "KernelMemory", "KernelMemoryTCP", "MemoryReservation", "MemorySwap",
    "MemorySwappiness", "OomKillDisable", "PidsLimit", "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps",
    "IOMaximumBandwidth", "MaskedPaths", "ReadonlyPaths",
)
# 26 and 28: ConsoleSize moved after VolumesFrom, no KernelMemory and KernelMemoryTCP
_HOST_26 = (
    *_HOST_20[:9], "ConsoleSize",
    *(name for name in _HOST_20[9:] if name not in ("ConsoleSize", "KernelMemory", "KernelMemoryTCP")),
)


@dataclass(frozen=True)
class _Layout:
    """One engine's config.v2.json (container, State, NetworkSettings, its endpoint) and hostconfig.json."""

    container: tuple[str, ...]
    state: tuple[str, ...]
    network: tuple[str, ...]
    endpoint: tuple[str, ...]
    host: tuple[str, ...]
    network_mode: str
    masked_paths: tuple[str, ...]


_LAYOUTS = {
    "20.10": _Layout(_CONTAINER_20, _STATE, _NETWORK_20, _ENDPOINT_20, _HOST_20, "default", MASKED_PATHS),
    "26": _Layout(
        _CONTAINER_26, _STATE, _NETWORK_26, _ENDPOINT_26, _HOST_26, "bridge", (*MASKED_PATHS, "/sys/devices/virtual/powercap")
    ),
    "28": _Layout(
        _CONTAINER_28, tuple(name for name in _STATE if name != "RemovalInProgress"), _NETWORK_26, _ENDPOINT_28,
        _HOST_26, "bridge", (*MASKED_PATHS[:2], "/proc/interrupts", *MASKED_PATHS[2:], "/sys/devices/virtual/powercap"),
    ),
}


def _ordered(values: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: values[name] for name in names}


def _network_settings(layout: _Layout, anonymous: bool) -> dict[str, Any]:
    endpoint = {
        "IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None, "IPAMOperational": False,
        "DNSNames": None, "DesiredMacAddress": "", "GwPriority": 0,
    }
    values = {
        "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Networks": {"bridge": _ordered(endpoint, layout.endpoint)}, "Service": None,
        "Ports": None, "SandboxKey": "", "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "IsAnonymousEndpoint": anonymous, "HasSwarmEndpoint": False,
    }
    return _ordered(values, layout.network)


def config_v2(
    container_id: str, created: str, name: str, named: bool, image_id: str, config: dict[str, Any],
    dialect: Dialect = DEFAULT, platform: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """container.Container of a Created container, in engine `dialect`'s field order (`platform`:
    the image's, which 28 records as ImagePlatform; image_platform)."""
    layout = _LAYOUTS[dialect.container_layout]
    command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    state = {
        "Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
        "RemovalInProgress": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
        "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME, "Health": None,
    }
    values = {
        "StreamConfig": {}, "State": _ordered(state, layout.state), "ID": container_id, "Created": created,
        "Managed": False, "Path": command[0] if command else "", "Args": command[1:], "Config": config,
        "Image": image_id, "ImageManifest": None, "NetworkSettings": _network_settings(layout, anonymous=not named),
        "LogPath": "", "Name": "/" + name, "Driver": "overlay2", "OS": "linux", "ImagePlatform": platform,
        "MountLabel": "", "ProcessLabel": "", "RestartCount": 0, "HasBeenStartedBefore": False,
        "HasBeenManuallyStopped": False, "MountPoints": {}, "SecretReferences": None, "ConfigReferences": None,
        "AppArmorProfile": "", "HostnamePath": "", "HostsPath": "", "ShmPath": "", "ResolvConfPath": "",
        "SeccompProfile": "", "NoNewPrivileges": False, "WritableCgroups": None,
        "LocalLogCacheMeta": {"HaveNotifyEnabled": False},
    }
    return _ordered(values, layout.container)


def cgroupns_mode() -> str:
    """dockerd's default cgroup namespace mode: "private" on a cgroup v2 host, else "host"."""
    return "private" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "host"


def host_config(dialect: Dialect = DEFAULT) -> dict[str, Any]:
    """HostConfig as the docker CLI sends it with no options and engine `dialect` completes it."""
    layout = _LAYOUTS[dialect.container_layout]
    values = {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": layout.network_mode, "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
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
        "MaskedPaths": list(layout.masked_paths), "ReadonlyPaths": list(READONLY_PATHS),
    }
    return _ordered(values, layout.host)


def image_platform(image: DecodedImage) -> dict[str, Any]:
    """The image's platform as 28 records it in ImagePlatform (an OCI platform: empty fields left out)."""
    platform: dict[str, Any] = {"architecture": image.architecture, "os": image.os}
    if image.os_version:
        platform["os.version"] = image.os_version
    if image.os_features:
        platform["os.features"] = list(image.os_features)
    if image.variant:
        platform["variant"] = image.variant
    return platform


def container_docs(
    options: CreateOptions, container_id: str, created_ns: int, name: str, image_id: str,
    image_config: dict[str, Any], dialect: Dialect = DEFAULT, platform: dict[str, Any] | None = None,
) -> ContainerDocs:
    """The bytes of config.v2.json and hostconfig.json (Go JSON and a newline, as json.Encoder writes)
    as engine `dialect` writes them; `image_config` as that engine decodes it (DecodedImage.config_for)."""
    config = merged_config(options, image_config, container_id[:12], dialect)
    doc = config_v2(container_id, rfc3339nano(created_ns), name, options.name is not None, image_id, config, dialect, platform)
    return ContainerDocs((go_json(doc) + "\n").encode(), (go_json(host_config(dialect)) + "\n").encode())
