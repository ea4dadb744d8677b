"""A throw-away test CA: server certificates for 127.0.0.1, client certificates, a JWT signing pair."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_ONE_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its unencrypted PEM key, written to disk."""

    cert: Path
    key: Path
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, stem: str, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> KeyPair:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return KeyPair(cert_path, key_path, key, cert)


def _builder(subject: str, issuer: x509.Name, public_key: rsa.RSAPublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _ONE_DAY)
        .not_valid_after(now + _ONE_DAY)
    )


class TestCA:
    """A self-signed CA in `directory` that issues server and client certificates."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, name: str = "emustore test CA") -> None:
        self.directory = directory
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (
            _builder(name, _name(name), key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        self.pair = _write(directory, "ca", key, cert)

    def issue(self, stem: str, *, server_ip: str | None = None, client: bool = False) -> KeyPair:
        """A leaf certificate: for a server at `server_ip`, or for TLS client authentication."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        builder = _builder(stem, self.pair.certificate.subject, key.public_key())
        if server_ip is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(server_ip))]), critical=False
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        if client:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        cert = builder.sign(self.pair.private_key, hashes.SHA256())
        return _write(self.directory, stem, key, cert)


def self_signed(directory: Path, stem: str) -> KeyPair:
    """A self-signed certificate (e.g. a token issuer's signing key, listed in rootcertbundle)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _builder(stem, _name(stem), key.public_key()).sign(key, hashes.SHA256())
    return _write(directory, stem, key, cert)
