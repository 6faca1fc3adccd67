"""Faults at the CA: Pebble rejecting half the nonces, and Pebble stopped (forgetting
everything) in the middle of an order. Every order still ends with exactly one version,
served by nginx."""

import ast
import time

import pytest

from tests.e2e.test_issuance import served
from tests.e2e.test_worker_crash import count_rows


def wait(predicate, timeout=180, what="condition"):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return result


def add_site(stack, name):
    root = stack.www_dir / name
    root.mkdir(parents=True)
    (root / "index.html").write_text(f"hello from {name}\n")
    site = stack.api("POST", "/api/v1/sites/", {"domains": [name], "root": str(root)})
    assert site.status_code == 201, site.text
    return site.json()["id"]


def add_account(stack):
    account = stack.api("POST", "/api/v1/acme-accounts/",
                        {"directory_url": stack.pebble.directory_url, "email": "ops@example.com"})
    assert account.status_code == 201, account.text
    return account.json()["id"]


def request_certificate(stack, name, account_id, site_id=None):
    cert = stack.api("POST", "/api/v1/certificates/", {
        "domains": [name], "acme_account": account_id, "key_type": "ec256", "site": site_id or add_site(stack, name),
    })
    assert cert.status_code == 201, cert.text
    return cert.json()["id"]


def certificate(stack, cert_id):
    return stack.api("GET", f"/api/v1/certificates/{cert_id}/").json()


def finished(stack, cert_id):
    body = certificate(stack, cert_id)
    return body if body["order"]["status"] in ("valid", "invalid") else None


def rows_per_certificate(stack):
    """{certificate id: (versions, orders)} for every certificate, in one query each."""
    script = (
        "from django.db.models import Count; from certs.models import Certificate;"
        "print(list(Certificate.objects.annotate(v=Count('versions', distinct=True), o=Count('orders', distinct=True))"
        ".values_list('id', 'v', 'o')))"
    )
    rows = ast.literal_eval(stack.manage("shell", "-c", script).stdout.strip().splitlines()[-1])
    return {cert_id: (versions, orders) for cert_id, versions, orders in rows}


@pytest.mark.pebble(env={"PEBBLE_WFE_NONCEREJECT": "50"})
def test_fifty_orders_reach_valid_while_the_ca_rejects_half_the_nonces(panel_stack):
    account_id = add_account(panel_stack)
    names = [f"nonce{i}.example.test" for i in range(50)]
    cert_ids = {name: request_certificate(panel_stack, name, account_id) for name in names}

    results = {name: wait(lambda c=cert_id: finished(panel_stack, c), what=f"{name} finishing")
               for name, cert_id in cert_ids.items()}

    failed = {name: body["order"]["log"] for name, body in results.items() if body["order"]["status"] != "valid"}
    assert not failed, failed
    # The CA did reject nonces, and the panel got through them.
    assert "rejected a nonce" in (panel_stack.log_dir / "worker-1.log").read_text()
    assert rows_per_certificate(panel_stack) == {cert_id: (1, 1) for cert_id in cert_ids.values()}
    for name in names:
        served(panel_stack, name, results[name]["serial"], in_a_row=2)


# Pebble's VA waits 0-8 s before validating: the order is still at the CA when it stops.
@pytest.mark.pebble(nosleep=False, va_sleep_seconds=8)
def test_an_order_survives_the_ca_restarting_and_forgetting_it(panel_stack, pebble):
    cert_id = request_certificate(panel_stack, "restart.example.test", add_account(panel_stack))
    first = wait(lambda: (c := certificate(panel_stack, cert_id))["order"]["status"] in ("validating", "valid") and c,
                 timeout=60, what="the order reaching the CA")
    assert first["order"]["status"] == "validating", "Pebble validated before it could be stopped"

    pebble.stop()
    wait(lambda: any("Temporary problem" in line for line in certificate(panel_stack, cert_id)["order"]["log"]),
         timeout=60, what="the panel noticing the CA is gone")
    pebble.start()  # same address and listener certificate; a new CA that knows nothing

    done = wait(lambda: finished(panel_stack, cert_id), what="the order finishing after the restart")
    assert done["order"]["status"] == "valid", done["order"]["log"]
    assert done["order"]["id"] == first["order"]["id"]
    log = done["order"]["log"]
    assert any("no longer knew the ACME account" in line for line in log), log
    assert any("starting a new order at the CA" in line for line in log), log
    assert len([line for line in log if "Order created at the CA" in line]) == 2, log
    assert count_rows(panel_stack, cert_id) == (1, 1)
    leaf = served(panel_stack, "restart.example.test", done["serial"])
    assert leaf.issuer == pebble.intermediate_certificate().subject  # issued by the restarted CA
