"""Private keys and CSRs for the key types the panel offers."""

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

_GENERATORS = {
    "ec256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ec384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "rsa3072": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
    "rsa4096": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
}
KEY_TYPES = tuple(_GENERATORS)


def _pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def generate_private_key(key_type: str) -> str:
    """A new private key of `key_type` (one of KEY_TYPES), as PKCS#8 PEM."""
    try:
        return _pem(_GENERATORS[key_type]())
    except KeyError:
        raise ValueError(f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}") from None


def generate_account_key() -> str:
    """ACME account keys are EC P-256 (ES256), small and fast to sign with."""
    return generate_private_key("ec256")


def load_private_key(pem: str):
    return serialization.load_pem_private_key(pem.encode(), password=None)


def make_csr(key_pem: str, names: list[str]) -> bytes:
    """A CSR for `names` (the first is also the common name when it fits)."""
    key = load_private_key(key_pem)
    builder = x509.CertificateSigningRequestBuilder().add_extension(
        x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
    )
    if len(names[0]) <= 64:
        builder = builder.subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
    else:
        builder = builder.subject_name(x509.Name([]))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
