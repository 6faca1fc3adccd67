"""What certificate does a TLS server present for a given SNI name?"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Callable

from cryptography import x509

from .ports import LOOPBACK


def tls_peer_certificate(host: str, port: int, server_name: str | None, timeout: float = 5.0) -> x509.Certificate:
    """The leaf certificate presented by host:port for SNI `server_name` (no verification).

    Raises ssl.SSLError / OSError when the handshake fails (e.g. nginx's
    `ssl_reject_handshake` for names no site claims).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError(f"{host}:{port} presented no certificate for {server_name!r}")
    return x509.load_der_x509_certificate(der)


def certificate_names(cert: x509.Certificate) -> list[str]:
    """DNS names of the certificate's subjectAltName extension."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.DNSName)


def wait_for_served_certificate(
    port: int,
    server_name: str,
    predicate: Callable[[x509.Certificate], bool] = lambda cert: True,
    timeout: float = 60.0,
    host: str = LOOPBACK,
    interval: float = 0.2,
) -> x509.Certificate:
    """Poll until the certificate served for `server_name` satisfies `predicate`; return it.

    Handshake failures count as "not yet". On timeout, raises TimeoutError saying what
    was served last (or the last handshake error).
    """
    deadline = time.monotonic() + timeout
    last = "nothing"
    while True:
        try:
            cert = tls_peer_certificate(host, port, server_name)
            if predicate(cert):
                return cert
            last = (
                f"certificate subject={cert.subject.rfc4514_string()} issuer={cert.issuer.rfc4514_string()} "
                f"names={certificate_names(cert)} serial={cert.serial_number:x}"
            )
        except (OSError, ssl.SSLError) as exc:
            last = f"handshake error {exc!r}"
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} (SNI {server_name}) did not serve a matching certificate in {timeout}s; last: {last}")
        time.sleep(interval)
