"""Signing keys: a local development CA and an ES256 signing certificate, or the user's own.

``keys init`` writes, under ``data_dir/keys``: ``ca.pem`` (the dev CA certificate, the one to put in
a trust list), ``signer.pem`` (the signing certificate followed by the CA: the chain C2PA embeds)
and ``signer.key`` (PKCS#8 PEM, mode 0600). Private key material is never logged or printed.
The signing certificate carries what C2PA validators ask of one: digitalSignature key usage, an
emailProtection/documentSigning extended key usage, not a CA, with subject/authority key ids.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from veracity.config import Settings
from veracity.errors import SigningKeyError

# id-kp-documentSigning (RFC 9336), accepted by the C2PA trust model.
_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
CA_FILE = "ca.pem"
CHAIN_FILE = "signer.pem"
KEY_FILE = "signer.key"


@dataclass(frozen=True, slots=True)
class KeyPaths:
    """Where a signing identity lives. ``ca`` is None for a user-supplied chain."""

    chain: Path
    key: Path
    ca: Path | None = None

    def read(self) -> tuple[bytes, bytes]:
        """(certificate chain PEM, private key PEM), checked to belong together."""
        try:
            chain = self.chain.read_bytes()
            key = self.key.read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"cannot read signing key material: {exc.strerror}", path=str(exc.filename)) from exc
        check_pair(chain, key)
        return chain, key


def keys_dir(settings: Settings) -> Path:
    return settings.data_dir / "keys"


def default_keys(settings: Settings) -> KeyPaths:
    d = keys_dir(settings)
    return KeyPaths(chain=d / CHAIN_FILE, key=d / KEY_FILE, ca=d / CA_FILE)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Veracity local development"),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    """Create with 0600 from the start (no window where the key is world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def init_dev_keys(settings: Settings, *, force: bool = False, signer_name: str = "Veracity dev signer") -> KeyPaths:
    """Make a development CA and an ES256 signing certificate under ``data_dir/keys``.

    Refuses to overwrite existing keys unless ``force``: replacing them would make every file
    signed so far verify against a CA nobody trusts any more.
    """
    paths = default_keys(settings)
    assert paths.ca is not None
    if paths.key.exists() and not force:
        raise SigningKeyError("signing keys already exist (use --force to replace them)", path=str(paths.key.parent))
    paths.key.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.key.parent, 0o700)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Veracity dev CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(signer_name))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, _DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    paths.ca.write_bytes(ca_cert.public_bytes(pem))
    paths.chain.write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    _write_private(
        paths.key,
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    # The CA key is not kept: a dev CA signs one certificate; a new one comes with `--force`.
    return paths


def check_pair(chain_pem: bytes, key_pem: bytes) -> x509.Certificate:
    """The first certificate of the chain must match the private key (ES256 / P-256 expected)."""
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise SigningKeyError("certificate chain is not valid PEM") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        # Never echo the key or the parser's view of it.
        raise SigningKeyError("private key is not an unencrypted PEM key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningKeyError("signing key must be an EC P-256 key (ES256)")
    pub = certs[0].public_key()
    same = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if not same:
        raise SigningKeyError("the private key does not belong to the first certificate of the chain")
    return certs[0]


def resolve_keys(settings: Settings, chain: Path | None = None, key: Path | None = None) -> KeyPaths:
    """The user's PEM chain + key when both are given, else the ones ``keys init`` made."""
    if (chain is None) != (key is None):
        raise SigningKeyError("give both a certificate chain and a private key, or neither")
    if chain is not None and key is not None:
        return KeyPaths(chain=chain, key=key)
    paths = default_keys(settings)
    if not paths.key.is_file() or not paths.chain.is_file():
        raise SigningKeyError("no signing keys: run `veracity keys init` or pass --cert and --key")
    return paths
