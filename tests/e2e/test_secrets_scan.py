"""After a real run, no secret is in clear in the database or in any log.

The run: an ACME account with External Account Binding (Pebble requires it), DNS credentials
with a TSIG secret used for DNS-01 against BIND, a certificate issued, its private key
downloaded, every call made with an API token the run makes for itself through
/api/v1/tokens/ (the harness's own token, printed by `create_api_token`, only makes that one).
Then the database is dumped and every log file under the test's directory (panel, worker, beat,
web, nginx, and the servers around them) read.
"""

import base64
import sqlite3

import pytest
from cryptography.hazmat.primitives import serialization

from tests.e2e.test_dns01 import credential, dns_stack, wait_order  # noqa: F401 - dns_stack is a fixture

EAB_KID = "kid-secrets-scan"
EAB_HMAC = base64.urlsafe_b64encode(b"eab-hmac-that-must-never-leak-01").rstrip(b"=").decode()
# Its own job is to print the token once to the operator; the harness keeps that in manage.log.
TOKEN_COMMAND = "=== manage.py create_api_token"


def key_forms(key_pem):
    """The key as PEM body lines, and its DER as one base64 string."""
    lines = [line for line in key_pem.splitlines() if line and not line.startswith("-----")]
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    return lines + ["".join(lines), base64.b64encode(der).decode()]


def database_dump(stack):
    assert stack.database_url.startswith("sqlite:///"), "the scan reads the stack's SQLite file"
    with sqlite3.connect(stack.database_url.removeprefix("sqlite:///")) as connection:
        return "\n".join(connection.iterdump())


def log_texts(tmp_path):
    for path in sorted(tmp_path.rglob("*.log")):
        text = path.read_text(errors="replace")
        if path.name == "manage.log":
            text = "".join(block for block in text.split("===") if not ("===" + block).startswith(TOKEN_COMMAND))
        yield path, text


@pytest.mark.dns_stack(pebble={"eab_required": True, "eab_keys": {EAB_KID: EAB_HMAC}})
def test_no_secret_is_in_clear_in_the_database_or_any_log(dns_stack, tmp_path):
    stack, bind = dns_stack
    made = stack.api("POST", "/api/v1/tokens/", {"name": "secrets scan", "scope": "read-write"})
    assert made.status_code == 201, made.text
    token_key = made.json()["key"]
    stack.session.headers["Authorization"] = f"Token {token_key}"  # every call from here on
    account = stack.api("POST", "/api/v1/acme-accounts/", {
        "directory_url": stack.pebble.directory_url, "email": "scan@example.com",
        "eab_kid": EAB_KID, "eab_hmac_key": EAB_HMAC})
    assert account.status_code == 201, account.text
    cert = stack.api("POST", "/api/v1/certificates/", {
        "domains": ["scan.example.test"], "acme_account": account.json()["id"], "challenge": "dns-01",
        "dns_credential": credential(stack, bind, "example.test")})
    assert cert.status_code == 201, cert.text
    assert wait_order(stack, cert.json()["id"], {"valid", "invalid"})["order"]["status"] == "valid"
    version_id = stack.api("GET", f"/api/v1/certificates/{cert.json()['id']}/versions/").json()["results"][0]["id"]
    key = stack.api("POST", f"/api/v1/certificate-versions/{version_id}/download/?format=pem-key")
    assert key.status_code == 200 and "PRIVATE KEY" in key.text
    assert stack.api("GET", f"/api/v1/tokens/{made.json()['id']}/").json()["last_used_at"] is not None

    secrets = {"DNS TSIG secret": [bind.tsig_secret], "EAB HMAC": [EAB_HMAC], "API token": [token_key, stack.token],
               "private key": key_forms(key.text)}
    places = {"database dump": database_dump(stack), **{str(p.relative_to(tmp_path)): t for p, t in log_texts(tmp_path)}}
    assert any("worker" in place for place in places), sorted(places)  # the logs were found and read
    found = sorted({(what, place) for what, forms in secrets.items() for form in forms
                    for place, text in places.items() if form in text})
    assert found == []
