"""Registry credentials kept the way the docker CLI keeps them: config.json `auths` and credential helpers."""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

from emustore import safejson
from emustore.errors import EmustoreError
from emustore.fsutil import atomic_write

HUB_SERVER = "https://index.docker.io/v1/"
HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", HUB_SERVER.rstrip("/")})
CONFIG_NAME = "config.json"
TOKEN_USERNAME = "<token>"  # what credential helpers answer as Username for an identity token
_HELPER_TIMEOUT = 60.0
_NOT_FOUND = "credentials not found"


class CredentialsError(EmustoreError):
    """The docker config file or a credential helper failed."""


@dataclass(frozen=True)
class Credentials:
    """A username and password, or an identity (refresh) token; secrets never show in repr."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token)


def server_key(server: str) -> str:
    """The config.json key for a server: Docker Hub's aliases become https://index.docker.io/v1/."""
    host = hostname(server)
    return HUB_SERVER if host in {hostname(a) for a in HUB_ALIASES} else server.rstrip("/")


def hostname(server: str) -> str:
    """host[:port] of a server address, with any scheme and path dropped (docker's ConvertToHostname)."""
    rest = server.split("://", 1)[1] if "://" in server else server
    return rest.split("/", 1)[0]


def default_config_dir() -> Path:
    """$DOCKER_CONFIG, else ~/.docker."""
    configured = os.environ.get("DOCKER_CONFIG")
    return Path(configured) if configured else Path.home() / ".docker"


class CredentialStore:
    """The credentials of one docker config directory (config.json plus the helpers it names)."""

    def __init__(self, config_dir: Path | None = None) -> None:
        self.path = (config_dir or default_config_dir()) / CONFIG_NAME

    def get(self, server: str) -> Credentials | None:
        """Credentials for a registry host or server address, or None when there are none."""
        key = server_key(server)
        config = self._load()
        helper = self._helper_for(config, key)
        if helper is not None:
            return _helper_get(helper, key)
        auths = _auths(config)
        entry = auths.get(key)
        if entry is None:
            wanted = hostname(key)
            entry = next((v for k, v in auths.items() if hostname(k) == wanted), None)
        return _decode_entry(entry, key, self.path) if isinstance(entry, dict) else None

    def store(self, server: str, credentials: Credentials) -> None:
        """Save credentials like `docker login`: through the helper if one is configured, else in auths."""
        key = server_key(server)
        config = self._load()
        helper = self._helper_for(config, key)
        auths = config.setdefault("auths", {})
        if helper is not None:
            secret = credentials.identity_token or credentials.password
            username = TOKEN_USERNAME if credentials.identity_token else credentials.username
            _run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": username, "Secret": secret}))
            auths.setdefault(key, {})
        else:
            entry: dict[str, str] = {}
            if credentials.identity_token:
                entry["auth"] = _b64(f"{credentials.username}:")
                entry["identitytoken"] = credentials.identity_token
            else:
                entry["auth"] = _b64(f"{credentials.username}:{credentials.password}")
            auths[key] = entry
        self._save(config)

    def erase(self, server: str) -> bool:
        """Forget the credentials for a server like `docker logout`; False when there were none."""
        key = server_key(server)
        config = self._load()
        helper = self._helper_for(config, key)
        auths = _auths(config)
        matching = [k for k in auths if k == key or hostname(k) == hostname(key)]
        for k in matching:
            del auths[k]
        found = bool(matching)
        if helper is not None:
            _run_helper(helper, "erase", key, missing_ok=True)
            found = True
        if found:
            self._save(config)
        return found

    def uses_file(self, server: str) -> bool:
        """Whether `store` would write the secret into config.json itself (no helper configured)."""
        return self._helper_for(self._load(), server_key(server)) is None

    def _helper_for(self, config: dict[str, Any], key: str) -> str | None:
        helpers = config.get("credHelpers")
        if isinstance(helpers, dict):
            named = helpers.get(key) or helpers.get(hostname(key))
            if isinstance(named, str) and named:
                return named
        store = config.get("credsStore")
        return store if isinstance(store, str) and store else None

    def _load(self) -> dict[str, Any]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CredentialsError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            config = safejson.loads(data) if data.strip() else {}
        except ValueError as exc:
            raise CredentialsError(f"{self.path} is not valid JSON: {exc}") from None
        if not isinstance(config, dict):
            raise CredentialsError(f"{self.path} is not a JSON object")
        return config

    def _save(self, config: dict[str, Any]) -> None:
        """Write config.json as the docker CLI does: through a symlink to its target (replaced
        atomically, mode 0600), missing directories made 0700."""
        target = _link_target(self.path)
        data = json.dumps(config, indent="\t").encode("utf-8")
        try:
            _make_private_dirs(target.parent)
            atomic_write(target, data, 0o600, temp_prefix=f".{target.name}.tmp")
        except OSError as exc:
            raise CredentialsError(f"cannot write {target}: {exc.strerror or exc}") from None


def _auths(config: dict[str, Any]) -> dict[str, Any]:
    """The config's "auths" map (empty when missing or not a map)."""
    auths = config.get("auths")
    return auths if isinstance(auths, dict) else {}


def _link_target(path: Path) -> Path:
    """The file a symlinked `path` leads to (itself when it is no link, or a dangling one)."""
    try:
        return Path(os.path.realpath(path, strict=True))
    except OSError:
        return path


def _make_private_dirs(path: Path) -> None:
    """Create `path` and each missing parent with mode 0700 (under the umask, as Go's MkdirAll);
    directories that exist are left as they are."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            pass


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _decode_entry(entry: dict[str, Any], key: str, path: Path) -> Credentials | None:
    username, password = entry.get("username") or "", entry.get("password") or ""
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"invalid auth for {key} in {path}: not base64") from None
        if ":" not in decoded:
            raise CredentialsError(f"invalid auth for {key} in {path}: no username:password")
        username, password = decoded.split(":", 1)
    token = entry.get("identitytoken") or ""
    found = Credentials(str(username), str(password), str(token))
    return None if found.empty else found


def _helper_get(helper: str, key: str) -> Credentials | None:
    answer = _run_helper(helper, "get", key, missing_ok=True)
    if not answer:
        return None
    try:
        doc = safejson.loads(answer)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise CredentialsError(f"docker-credential-{helper} get answered something that is not a JSON object")
    username, secret = str(doc.get("Username") or ""), str(doc.get("Secret") or "")
    if username == TOKEN_USERNAME:
        return Credentials(identity_token=secret)
    found = Credentials(username, secret)
    return None if found.empty else found


def _run_helper(helper: str, action: str, stdin: str, *, missing_ok: bool = False) -> str:
    """Run `docker-credential-<helper> <action>`; "" when it reports credentials not found and that is ok."""
    import subprocess  # only with a credential helper: a faster start

    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run(
            [program, action], input=stdin.encode("utf-8"), capture_output=True, timeout=_HELPER_TIMEOUT
        )
    except FileNotFoundError:
        raise CredentialsError(f"credential helper {program} not found in PATH") from None
    except subprocess.TimeoutExpired:
        raise CredentialsError(f"credential helper {program} {action} timed out") from None
    out = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        if missing_ok and _NOT_FOUND in out.lower():
            return ""
        # Never echo what a helper printed: it may contain a secret.
        raise CredentialsError(f"credential helper {program} {action} failed (exit code {done.returncode})")
    return out
