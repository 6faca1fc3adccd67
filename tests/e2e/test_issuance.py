"""A site gets HTTPS end to end: API -> Celery worker -> Pebble (HTTP-01) -> nginx."""

import socket
import ssl
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support import certificate_names, tls_peer_certificate, wait_for_served_certificate


def issue(stack, domains, key_type, site_domains=None):
    root = stack.www_dir / domains[0]
    root.mkdir(parents=True)
    (root / "index.html").write_text(f"hello from {domains[0]}\n")
    site = stack.api("POST", "/api/v1/sites/", {"domains": site_domains or domains, "root": str(root)})
    assert site.status_code == 201, site.text
    account = stack.api("POST", "/api/v1/acme-accounts/",
                        {"directory_url": stack.pebble.directory_url, "email": "ops@example.com"})
    assert account.status_code == 201, account.text
    cert = stack.api("POST", "/api/v1/certificates/", {
        "domains": domains, "acme_account": account.json()["id"], "key_type": key_type, "site": site.json()["id"],
    })
    assert cert.status_code == 201, cert.text
    return cert.json()


def wait_for_status(stack, cert_id, wanted, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        body = stack.api("GET", f"/api/v1/certificates/{cert_id}/").json()
        if body["order"]["status"] == wanted or body["order"]["status"] == "invalid" or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def served(stack, name, serial, in_a_row=10):
    """The certificate nginx serves for `name` once it has settled on `serial`: right after a
    reload, old and new workers answer side by side for ~100 ms, so one handshake is not enough."""
    # Generous: under the full parallel suite on two cores a reload can wait its turn.
    deadline = time.monotonic() + 60
    streak = 0
    while streak < in_a_row:
        remaining = max(deadline - time.monotonic(), 0.1)
        leaf = wait_for_served_certificate(stack.https_port, name,
                                           lambda c: format(c.serial_number, "x") == serial, timeout=remaining)
        try:
            same = format(tls_peer_certificate("127.0.0.1", stack.https_port, name).serial_number, "x") == serial
        except (OSError, ssl.SSLError):
            same = False
        streak = streak + 1 if same else 0
        assert time.monotonic() < deadline or streak == in_a_row, f"{name} did not settle on {serial}"
    return leaf


def negotiated_version(port, server_name, version):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=server_name) as tls:
            return tls.version()


def page_over_tls(host, port, server_name):
    """GET / from host:port over TLS with SNI and Host `server_name`: the response, headers and body."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=server_name) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
            return b"".join(iter(lambda: tls.recv(65536), b"")).decode()


KINDS = [
    pytest.param(["one.example.test"], "ec256", ec.EllipticCurvePublicKey, 256, id="ec256-one-name"),
    pytest.param(["three.example.test", "www.three.example.test", "cdn.three.example.test"], "ec256",
                 ec.EllipticCurvePublicKey, 256, id="ec256-three-names"),
    pytest.param(["rsa.example.test"], "rsa2048", rsa.RSAPublicKey, 2048, id="rsa2048"),
    pytest.param(["p384.example.test"], "ec384", ec.EllipticCurvePublicKey, 384, id="ec384"),
]


def test_sites_are_served_with_issued_and_renewed_certificates_and_a_failed_validation_says_why(panel_stack):
    # One stack for every kind, a renewal and a failed validation (a stack takes ~30 s to start,
    # an issuance ~5 s, and the orders run side by side): the sites next to each other also
    # show that SNI picks each site's own certificate.
    certs = {kind.id: issue(panel_stack, kind.values[0], kind.values[1]) for kind in KINDS}
    to_renew = issue(panel_stack, ["renew.example.test"], "ec256")
    # Pebble resolves this name to an address where nothing listens.
    panel_stack.pebble.add_a_record("down.example.test.", ["127.0.0.2"])
    to_fail = issue(panel_stack, ["down.example.test"], "ec256")

    for kind in KINDS:
        domains, key_type, key_class, key_size = kind.values
        body = wait_for_status(panel_stack, certs[kind.id]["id"], "valid")
        assert body["order"]["status"] == "valid", (kind.id, body)
        assert body["status"] == "valid" and body["last_error"] == "", (kind.id, body)

        intermediate = x509.load_pem_x509_certificate(panel_stack.pebble.intermediate_pem().encode())
        for name in domains:  # every name, by SNI, gets the same new certificate
            leaf = served(panel_stack, name, body["serial"])
            assert sorted(certificate_names(leaf)) == sorted(domains), kind.id
            assert leaf.issuer == intermediate.subject, kind.id
            assert isinstance(leaf.public_key(), key_class) and leaf.public_key().key_size == key_size, kind.id
        assert body["issuer"] == intermediate.subject.rfc4514_string(), kind.id
        # Mozilla "intermediate": TLS 1.3 and 1.2 both offered.
        assert negotiated_version(panel_stack.https_port, domains[0], ssl.TLSVersion.TLSv1_3) == "TLSv1.3", kind.id
        assert negotiated_version(panel_stack.https_port, domains[0], ssl.TLSVersion.TLSv1_2) == "TLSv1.2", kind.id
        # The site still answers over plain HTTP (no force-HTTPS asked for).
        assert f"hello from {domains[0]}" in panel_stack.http_get(domains[0]).text, kind.id
        # ... and over IPv6 (nginx listens on ::1 as well as 127.0.0.1), with the same certificate.
        assert tls_peer_certificate("::1", panel_stack.https_port, domains[0]) == leaf, kind.id
        assert f"hello from {domains[0]}" in page_over_tls("::1", panel_stack.https_port, domains[0]), kind.id

    renewal_replaces_the_served_certificate_and_keeps_history(panel_stack, to_renew)
    a_failed_validation_reports_the_cas_words(panel_stack, to_fail)


@pytest.mark.panel_stack(database_url="postgres")
def test_issuance_on_postgresql(panel_stack):
    cert = issue(panel_stack, ["pg.example.test"], "ec256")
    body = wait_for_status(panel_stack, cert["id"], "valid")
    assert body["order"]["status"] == "valid", body
    served(panel_stack, "pg.example.test", body["serial"])


def renewal_replaces_the_served_certificate_and_keeps_history(panel_stack, cert):
    first = wait_for_status(panel_stack, cert["id"], "valid")
    served(panel_stack, "renew.example.test", first["serial"])

    renewed = panel_stack.api("POST", f"/api/v1/certificates/{cert['id']}/renew/")
    assert renewed.status_code == 202, renewed.text
    again = panel_stack.api("POST", f"/api/v1/certificates/{cert['id']}/renew/")
    assert again.status_code in (202, 409)  # 409 while the first renewal runs

    deadline = time.monotonic() + 60
    while True:
        second = panel_stack.api("GET", f"/api/v1/certificates/{cert['id']}/").json()
        if second["serial"] != first["serial"] and second["order"]["status"] == "valid":
            break
        assert time.monotonic() < deadline, second
        time.sleep(0.1)
    served(panel_stack, "renew.example.test", second["serial"])


def a_failed_validation_reports_the_cas_words(panel_stack, cert):
    body = wait_for_status(panel_stack, cert["id"], "invalid")
    assert body["order"]["status"] == "invalid"
    assert body["status"] == "failed"
    assert "down.example.test" in body["last_error"] and "connection" in body["last_error"]
    assert any("Failed" in line for line in body["order"]["log"])
