"""Where to pull a reference from, in order, as dockerd 20.10 picks endpoints: mirrors, then the origin."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from emustore.errors import RegistryError
from emustore.reference import DEFAULT_DOMAIN, Reference
from emustore.registry.client import CredentialSource, RegistryClient, TLSFailure
from emustore.registry.options import RegistryOptions
from emustore.registry.tls import ssl_context

T = TypeVar("T")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    """One base URL to try; `mirror` endpoints give way to the next on any registry error."""

    url: str
    verify: bool
    mirror: bool = False

    @property
    def host(self) -> str:
        return httpx.URL(self.url).netloc.decode("ascii")

    def falls_back_on(self, error: RegistryError) -> bool:
        """Whether the next endpoint should be tried after `error` (mirror: always; HTTPS origin: TLS failed)."""
        return self.mirror or isinstance(error, TLSFailure)


def endpoints(ref: Reference, options: RegistryOptions) -> list[Endpoint]:
    """Mirrors first for docker.io; an insecure origin is tried over unverified HTTPS, then plain HTTP."""
    found: list[Endpoint] = []
    if ref.domain == DEFAULT_DOMAIN:
        for mirror in options.mirrors:
            host = httpx.URL(mirror).netloc.decode("ascii")
            found.append(Endpoint(mirror, verify=not options.is_insecure(host), mirror=True))
    host = ref.registry_host
    if ref.domain != DEFAULT_DOMAIN and options.is_insecure(ref.domain):
        found += [Endpoint(f"https://{host}", verify=False), Endpoint(f"http://{host}", verify=False)]
    else:
        found.append(Endpoint(f"https://{host}", verify=True))
    return found


def client_for(
    ref: Reference, endpoint: Endpoint, options: RegistryOptions, credentials: CredentialSource = None
) -> RegistryClient:
    """A client for one endpoint; credentials (unless given) are the reference's registry's, as docker sends them."""
    url = httpx.URL(endpoint.url)
    return RegistryClient(
        endpoint.host,
        domain=ref.domain,
        scheme=url.scheme,
        verify=ssl_context(endpoint.host, options.certs_dir, verify=endpoint.verify),
        credentials=credentials if credentials is not None else (lambda: options.credentials.get(ref.domain)),
        retry=options.retry,
        timeout=options.timeout,
        stall=options.stall,
    )


def first_working(
    ref: Reference,
    options: RegistryOptions,
    attempt: Callable[[RegistryClient], T],
    credentials: CredentialSource = None,
) -> tuple[RegistryClient, T]:
    """Run `attempt` on each endpoint in turn until one succeeds; that endpoint's client is left open."""
    *fallbacks, last = endpoints(ref, options)
    for endpoint in fallbacks:
        try:
            return _attempt_at(ref, endpoint, options, attempt, credentials)
        except RegistryError as exc:
            if not endpoint.falls_back_on(exc):
                raise
            _log.info("endpoint %s failed, trying the next one: %s", endpoint.url, exc)
    return _attempt_at(ref, last, options, attempt, credentials)


def _attempt_at(
    ref: Reference,
    endpoint: Endpoint,
    options: RegistryOptions,
    attempt: Callable[[RegistryClient], T],
    credentials: CredentialSource,
) -> tuple[RegistryClient, T]:
    client = client_for(ref, endpoint, options, credentials)
    try:
        return client, attempt(client)
    except BaseException:
        client.close()
        raise
