"""The API's PKI under `<rootDir>/pki` (made on first start, kept afterwards) and kubeconfig files.

    ca.crt / ca.key                 nodelet's own CA (10 years), signs everything below
    apiserver.crt / apiserver.key   serving certificate; SANs localhost, 127.0.0.1, ::1, the node name, the node IP
    admin.crt / admin.key           client certificate CN=nodelet-admin, O=system:masters (full access)
    viewer.crt / viewer.key         client certificate CN=nodelet-viewer, O=nodelet:viewers (read-only: 403 on writes)

Keys are ECDSA P-256, files 0600 (certificates 0644). A serving certificate whose SANs no longer cover the node
name/IP is re-issued (same CA); the CA and client certificates are never replaced once made.
"""
from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ADMIN_GROUP", "VIEW_GROUP", "Pki", "ensure_pki", "render_kubeconfig", "write_private_file"]

log = logging.getLogger(__name__)

ADMIN_GROUP = "system:masters"
VIEW_GROUP = "nodelet:viewers"
_USERS = {"admin": ("nodelet-admin", ADMIN_GROUP), "viewer": ("nodelet-viewer", VIEW_GROUP)}
_DAYS_CA = 3650
_DAYS_LEAF = 825


@dataclass(frozen=True, kw_only=True)
class Pki:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def serving_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "apiserver.key"

    def client_cert(self, user: str) -> Path:
        return self.dir / f"{user}.crt"

    def client_key(self, user: str) -> Path:
        return self.dir / f"{user}.key"


def write_private_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Atomically: a temp file in the same directory created with `mode`, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return True


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(cn: str, org: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, pub: Any, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days)))


def _sans(node_name: str, node_ips: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    if node_name and node_name != "localhost":
        names.append(x509.DNSName(node_name))
    ips = ["127.0.0.1", "::1"] + [ip for ip in node_ips if ip]
    seen = set()
    for ip in ips:
        addr = ipaddress.ip_address(ip)
        if addr not in seen:
            seen.add(addr)
            names.append(x509.IPAddress(addr))
    return names


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _covers(cert: x509.Certificate, wanted: list[x509.GeneralName]) -> bool:
    try:
        have = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return False
    expires = cert.not_valid_after_utc
    return set(wanted) <= have and expires > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)


def ensure_pki(directory: str | Path, *, node_name: str, node_ips: list[str]) -> Pki:
    """Make whatever is missing (idempotent). Returns where the files are."""
    pki = Pki(dir=Path(directory))
    pki.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(pki.dir, 0o700)
    ca_cert = _load_cert(pki.ca_cert)
    ca_key_path = pki.dir / "ca.key"
    if ca_cert is None or not ca_key_path.exists():
        key = _key()
        subject = _name(f"nodelet-ca@{node_name}")
        ca_cert = (_builder(subject, subject, key.public_key(), _DAYS_CA)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .sign(key, hashes.SHA256()))
        write_private_file(ca_key_path, _pem_key(key))
        write_private_file(pki.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        for p in (pki.serving_cert, *(pki.client_cert(u) for u in _USERS)):  # signed by an old CA: re-issue
            with _suppress():
                p.unlink()
        log.info("made the API's CA path=%s", pki.ca_cert)
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    sans = _sans(node_name, node_ips)
    serving = _load_cert(pki.serving_cert)
    if serving is None or not pki.serving_key.exists() or not _covers(serving, sans):
        key = _key()
        cert = (_builder(_name("nodelet-apiserver", "nodelet"), ca_cert.subject, key.public_key(), _DAYS_LEAF)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(ca_key, hashes.SHA256()))
        write_private_file(pki.serving_key, _pem_key(key))
        write_private_file(pki.serving_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        log.info("issued the API serving certificate sans=%s", ",".join(str(getattr(s, "value", s)) for s in sans))
    for user, (cn, org) in _USERS.items():
        if _load_cert(pki.client_cert(user)) is not None and pki.client_key(user).exists():
            continue
        key = _key()
        cert = (_builder(_name(cn, org), ca_cert.subject, key.public_key(), _DAYS_LEAF)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(ca_key, hashes.SHA256()))
        write_private_file(pki.client_key(user), _pem_key(key))
        write_private_file(pki.client_cert(user), cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return pki


def render_kubeconfig(pki: Pki, *, server: str, node_name: str, user: str = "admin") -> str:
    """A self-contained kubeconfig (certificates embedded) for `user` ("admin" or "viewer")."""
    if user not in _USERS:
        raise ValueError(f"unknown user {user!r} (admin or viewer)")

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    cluster = f"nodelet-{node_name}"
    uname = f"{_USERS[user][0]}@{node_name}"
    ctx = f"{user}@nodelet-{node_name}" if user != "admin" else cluster
    doc = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)}}],
        "users": [{"name": uname, "user": {"client-certificate-data": b64(pki.client_cert(user)),
                                           "client-key-data": b64(pki.client_key(user))}}],
        "contexts": [{"name": ctx, "context": {"cluster": cluster, "user": uname, "namespace": "default"}}],
        "current-context": ctx,
    }
    return yaml.safe_dump(doc, sort_keys=False)
