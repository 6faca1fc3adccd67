"""ARI (RFC 9773) end to end against Pebble >= 2.6, which serves renewalInfo
(Pebble(ari=True): Debian 13's package, see tests/support/pebble.py).

After issuance the panel's planned renewal time lies inside the window Pebble suggests
for that certificate; a renewal order names the certificate it replaces, and Pebble's
order object says so too.
"""

import base64
import datetime
import json
import time

import josepy as jose
import pytest
import requests
from acme import client as acme_client
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.e2e.test_issuance import issue, served, wait_for_status


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def ari_id(cert: x509.Certificate) -> str:
    """RFC 9773 4.1, computed here independently of the panel: AKI keyIdentifier "." DER serial."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    serial = cert.serial_number
    return f"{b64url(aki)}.{b64url(serial.to_bytes((serial.bit_length() + 8) // 8, 'big', signed=True))}"


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def panel_query(stack, code: str) -> dict:
    """Run `code` (which sets `result`) in the panel's Django; returns `result`."""
    out = stack.manage("shell", "-c", f"import json\n{code}\nprint('RESULT ' + json.dumps(result, default=str))")
    line = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def stored_certificate(stack, cert_id):
    return panel_query(stack, f"""
from certs.models import Certificate
c = Certificate.objects.get(pk={cert_id})
result = dict(start=c.ari_window_start, end=c.ari_window_end, check_after=c.ari_check_after,
              next=c.next_renewal_at.isoformat(), version=c.current_version_id)
""")


def wait_for_ari(stack, cert_id, after_version=None, timeout=60):
    """The window is asked for by a task queued when the issuing transaction commits."""
    deadline = time.monotonic() + timeout
    while True:
        stored = stored_certificate(stack, cert_id)
        if stored["start"] and stored["version"] != after_version:
            return stored
        assert time.monotonic() < deadline, f"no ARI window stored: {stored}"
        time.sleep(0.3)


def pebble_window(pebble, cert: x509.Certificate):
    url = pebble.directory()["renewalInfo"].rstrip("/") + "/" + ari_id(cert)
    response = requests.get(url, verify=str(pebble.ca_bundle_path), timeout=5)
    response.raise_for_status()
    window = response.json()["suggestedWindow"]
    return parse_time(window["start"]), parse_time(window["end"]), response.headers.get("Retry-After")


def pebble_order(stack, order_url: str) -> dict:
    """Pebble's own view of an order: POST-as-GET signed with the panel account's key."""
    account = panel_query(stack, """
from certs.models import AcmeAccount
a = AcmeAccount.objects.get()
result = dict(key=a.account_key, url=a.account_url)
""")
    key = serialization.load_pem_private_key(account["key"].encode(), password=None)
    net = acme_client.ClientNetwork(jose.JWKEC(key=key), alg=jose.ES256,
                                    account=messages.RegistrationResource(uri=account["url"],
                                                                          body=messages.Registration()),
                                    verify_ssl=str(stack.pebble.ca_bundle_path))
    new_nonce = stack.pebble.directory()["newNonce"]
    for _ in range(5):  # Pebble rejects a share of good nonces on purpose
        try:
            return net.post(order_url, None, new_nonce_url=new_nonce).json()
        except messages.Error as error:
            if error.code != "badNonce":
                raise
    raise AssertionError("Pebble kept rejecting nonces")


@pytest.fixture
def ari_pebble(pebble):
    if "renewalInfo" not in pebble.directory():
        pytest.fail(f"{pebble.binary} serves no renewalInfo: ARI needs pebble >= 2.6 (on Debian 12 "
                    "scripts/install-system-deps fetches Debian 13's)")
    return pebble


@pytest.mark.pebble(ari=True)
def test_renewal_is_planned_inside_pebbles_window_and_the_renewal_order_replaces_the_old_certificate(
        ari_pebble, panel_stack):
    cert = issue(panel_stack, ["ari.example.test"], "ec256")
    first = wait_for_status(panel_stack, cert["id"], "valid")
    assert first["order"]["status"] == "valid", first
    leaf = served(panel_stack, "ari.example.test", first["serial"])

    stored = wait_for_ari(panel_stack, cert["id"])
    start, end, retry_after = pebble_window(ari_pebble, leaf)
    assert (parse_time(stored["start"]), parse_time(stored["end"])) == (start, end)
    planned = parse_time(panel_stack.api("GET", f"/api/v1/certificates/{cert['id']}/").json()["next_renewal_at"])
    assert start <= planned <= end, (start, planned, end)
    assert planned == parse_time(stored["next"])
    # Re-checked when Pebble's Retry-After says (it sends 6 hours).
    assert retry_after is not None
    expected = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=int(retry_after))
    assert abs(parse_time(stored["check_after"]) - expected) < datetime.timedelta(minutes=2)

    renewed = panel_stack.api("POST", f"/api/v1/certificates/{cert['id']}/renew/")
    assert renewed.status_code == 202, renewed.text
    deadline = time.monotonic() + 60
    while True:
        second = panel_stack.api("GET", f"/api/v1/certificates/{cert['id']}/").json()
        if second["serial"] != first["serial"] and second["order"]["status"] == "valid":
            break
        assert second["order"]["status"] != "invalid", second
        assert time.monotonic() < deadline, second
        time.sleep(0.2)

    order = panel_query(panel_stack, f"""
from certs.models import Order
o = Order.objects.filter(certificate_id={cert['id']}).order_by("-id").first()
result = dict(replaces=o.replaces, url=o.acme_url, status=o.status)
""")
    assert order["status"] == "valid"
    assert order["replaces"] == ari_id(leaf)
    at_pebble = pebble_order(panel_stack, order["url"])
    assert at_pebble["replaces"] == ari_id(leaf)
    assert at_pebble["status"] == "valid"

    # The new certificate gets its own window, and its renewal is planned inside it.
    new_leaf = served(panel_stack, "ari.example.test", second["serial"])
    stored = wait_for_ari(panel_stack, cert["id"], after_version=stored["version"])
    start, end, _ = pebble_window(ari_pebble, new_leaf)
    assert (parse_time(stored["start"]), parse_time(stored["end"])) == (start, end)
    assert start <= parse_time(stored["next"]) <= end
