"""PEM certificates and keys as nginx is given them: a self-signed certificate for what has no
real one yet, and the check that a key and a chain belong together before nginx reads them at a
handshake (a variable certificate path is read only then: a bad pair would fail every client)."""

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class CertificateUnusable(ValueError):
    """A chain and key nginx would refuse: says which and why."""


def self_signed(common_name: str, dns_names=(), ip_addresses=(), days=3650) -> tuple[str, str]:
    """(key PEM, certificate PEM): a new EC P-256 key and a self-signed certificate for it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    builder = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def bundle(key_pem: str, chain_pem: str) -> str:
    """One file for nginx's ssl_certificate and ssl_certificate_key both: the key, then the chain."""
    return key_pem.rstrip("\n") + "\n" + chain_pem


def unbundle(text: str) -> tuple[str, str]:
    """(key PEM, chain PEM) of a bundle(); ValueError when it holds no certificate."""
    chain = text.index("-----BEGIN CERTIFICATE-----")
    return text[:chain], text[chain:]


def same_public_key(a, b) -> bool:
    """Whether two public keys (of a certificate, of a private key) are the same key."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(*spki) == b.public_bytes(*spki)


def check_pair(chain_pem: str, key_pem: str) -> None:
    """Raise CertificateUnusable unless `chain_pem` holds a certificate first whose public key
    is `key_pem`'s."""
    try:
        leaf = x509.load_pem_x509_certificates(chain_pem.encode())[0]
    except (ValueError, IndexError) as exc:
        raise CertificateUnusable(f"the certificate cannot be read: {exc}") from None
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateUnusable(f"the private key cannot be read: {exc}") from None
    if not same_public_key(leaf.public_key(), key.public_key()):
        raise CertificateUnusable("the private key does not belong to the certificate")
