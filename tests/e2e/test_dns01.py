"""DNS-01 end to end: real BIND 9 (RFC 2136 with TSIG), Pebble resolving through it, the
panel's worker publishing, watching and removing TXT records."""

import time

import pytest

import sqlite3

from tests.support import BindResolver, BindServer, PanelStack, Pebble, PowerDnsServer, RedisServer


@pytest.fixture
def dns_stack(request, tmp_path):
    """BIND (or PowerDNS, server="powerdns") with the marker's zones (pebble={...}: more Pebble
    options; panel_env={...}: more of the panel's environment, "{pebble_directory}" in a value
    standing for Pebble's directory URL); Pebble resolving through a recursive BIND in front of it, as a
    CA does (unless pebble_dns="challtestsrv"); the panel checking propagation against the
    authoritative BIND itself (unless checker_dns="challtestsrv"). Yields (stack, bind)."""
    options = dict(request.node.get_closest_marker("dns_stack").kwargs) if request.node.get_closest_marker(
        "dns_stack") else {}
    if options.get("server") == "powerdns":
        bind = PowerDnsServer(tmp_path / "powerdns", zone=options.get("zones", ("pdns.test",))[0])
    else:
        bind = BindServer(tmp_path / "bind", zones=options.get("zones", ("example.test",)))
    started = [bind.start()]
    try:
        resolver = None
        if options.get("pebble_dns") != "challtestsrv":
            resolver = BindResolver.for_servers(tmp_path / "resolver", bind)
            started.append(resolver.start())
        pebble = Pebble(tmp_path / "pebble", dns_server=resolver.server_address if resolver else None,
                        **options.get("pebble", {}))
        started.append(pebble.start())
        redis = RedisServer(tmp_path / "redis")
        started.append(redis.start())
        checker = pebble.dns_address if options.get("checker_dns") == "challtestsrv" else bind.server_address
        stack = PanelStack(tmp_path / "panel", pebble, redis,
                           extra_env={"CERTPANEL_DNS_RESOLVERS": checker, **{
                               key: value.format(pebble_directory=pebble.directory_url)
                               for key, value in options.get("panel_env", {}).items()}},
                           worker_concurrency=options.get("worker_concurrency", 2))
        started.append(stack.start())
        yield stack, bind
    except Exception:
        for component in reversed(started):
            print(component.dump_logs())
        raise
    finally:
        for component in reversed(started):
            component.stop()


def account(stack):
    response = stack.api("POST", "/api/v1/acme-accounts/", {"directory_url": stack.pebble.directory_url,
                                                            "email": "dns@example.com"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def credential(stack, bind, zone, **extra):
    response = stack.api("POST", "/api/v1/dns-credentials/", {
        "provider": "rfc2136", "name": f"BIND {zone}", "credentials": {**bind.tsig, "zone": zone}, **extra,
    })
    assert response.status_code == 201, response.text
    assert bind.tsig_secret not in response.text
    return response.json()["id"]


def request_certificate(stack, **fields):
    response = stack.api("POST", "/api/v1/certificates/", {"acme_account": account(stack), **fields})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_order(stack, cert_id, statuses, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        body = stack.api("GET", f"/api/v1/certificates/{cert_id}/").json()
        if body["order"]["status"] in statuses:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def txt(bind, name):
    return bind.query(name, "TXT")


@pytest.mark.dns_stack(zones=("example.test",))
def test_a_wildcard_and_apex_certificate_through_rfc2136(dns_stack):
    stack, bind = dns_stack
    cert_id = request_certificate(stack, domains=["example.test", "*.example.test"], challenge="dns-01",
                                  dns_credential=credential(stack, bind, "example.test"))
    body = wait_order(stack, cert_id, ("valid", "invalid"))
    assert body["order"]["status"] == "valid", body
    assert body["status"] == "valid" and body["issuer"] and body["serial"]
    records = body["order"]["dns_records"]
    assert {r["name"] for r in records} == {"_acme-challenge.example.test"} and len(records) == 2
    assert txt(bind, "_acme-challenge.example.test") == []  # both values removed again


@pytest.mark.dns_stack(zones=("example.test",), pebble_dns="challtestsrv")
def test_records_are_removed_after_a_failed_validation(dns_stack):
    # Pebble resolves through its own fake DNS, which never has our TXT records.
    stack, bind = dns_stack
    cert_id = request_certificate(stack, domains=["fail.example.test"], challenge="dns-01",
                                  dns_credential=credential(stack, bind, "example.test"))
    body = wait_order(stack, cert_id, ("valid", "invalid"))
    assert body["order"]["status"] == "invalid", body
    assert "fail.example.test" in body["last_error"]
    assert txt(bind, "_acme-challenge.fail.example.test") == [], body["order"]["log"]


@pytest.mark.dns_stack(zones=("example.test",))
def test_manual_mode_waits_for_the_user_and_continues_by_itself(dns_stack):
    stack, bind = dns_stack
    cert_id = request_certificate(stack, domains=["example.test", "*.example.test"], challenge="dns-01-manual")
    body = wait_order(stack, cert_id, ("awaiting_user", "invalid"))
    assert body["order"]["status"] == "awaiting_user", body
    records = body["order"]["dns_records"]
    assert len(records) == 2 and {r["name"] for r in records} == {"_acme-challenge.example.test"}
    assert all(r["expires_at"] for r in records)
    for record in records:  # the user adds them out of band
        bind.nsupdate_add_txt(record["name"], record["value"])
    body = wait_order(stack, cert_id, ("valid", "invalid"))  # no further POST
    assert body["order"]["status"] == "valid", body


@pytest.mark.dns_stack(zones=("example.test", "alias.test"))
def test_alias_mode_writes_the_record_in_the_alias_zone(dns_stack):
    stack, bind = dns_stack
    alias_credential = credential(stack, bind, "alias.test")
    missing = request_certificate(stack, domains=["shop.example.test"], challenge="dns-01",
                                  dns_credential=alias_credential, challenge_alias="alias.test")
    body = wait_order(stack, missing, ("valid", "invalid"))
    assert body["order"]["status"] == "invalid"
    assert "_acme-challenge.shop.example.test has no CNAME" in body["last_error"], body
    assert not any("Order created at the CA" in line for line in body["order"]["log"])  # checked before ordering

    bind.add_cname("_acme-challenge.shop.example.test", "_acme-challenge.alias.test")
    renewed = stack.api("POST", f"/api/v1/certificates/{missing}/renew/")
    assert renewed.status_code == 202, renewed.text
    body = wait_order(stack, missing, ("valid", "invalid"))
    assert body["order"]["status"] == "valid", (body["last_error"], body["order"]["log"])
    assert body["order"]["dns_records"][0]["name"] == "_acme-challenge.alias.test"
    assert txt(bind, "_acme-challenge.alias.test") == []


@pytest.mark.dns_stack(zones=("example.test",), pebble_dns="challtestsrv", checker_dns="challtestsrv",
                       worker_concurrency=1)
def test_a_propagation_timeout_fails_late_and_does_not_block_the_worker(dns_stack):
    # The provider writes to BIND, but the panel checks a server that never shows the record.
    stack, bind = dns_stack
    checker = stack.pebble.dns_address
    slow = credential(stack, bind, "example.test", propagation_timeout=6)
    waiting = request_certificate(stack, domains=["never.example.test"], challenge="dns-01", dns_credential=slow)
    started = time.monotonic()
    wait_order(stack, waiting, ("propagating", "invalid"))

    # Meanwhile an HTTP-01 order on the same single-process worker completes.
    root = stack.www_dir / "http.example.test"
    root.mkdir(parents=True)
    site = stack.api("POST", "/api/v1/sites/", {"domains": ["http.example.test"], "root": str(root)}).json()
    other = request_certificate(stack, domains=["http.example.test"], site=site["id"])
    body = wait_order(stack, other, ("valid", "invalid"))
    assert body["order"]["status"] == "valid", body
    assert stack.api("GET", f"/api/v1/certificates/{waiting}/").json()["order"]["status"] == "propagating"

    body = wait_order(stack, waiting, ("valid", "invalid"))
    assert time.monotonic() - started >= 5  # not before the configured 6 s
    assert body["order"]["status"] == "invalid"
    assert "Gave up waiting for the TXT records in DNS" in body["last_error"]
    assert checker in body["last_error"] and "_acme-challenge.never.example.test" in body["last_error"]
    assert txt(bind, "_acme-challenge.never.example.test") == []


@pytest.mark.dns_stack(server="powerdns", zones=("pdns.test",))
def test_the_lexicon_powerdns_provider_issues_and_no_secret_leaks(dns_stack):
    stack, pdns = dns_stack
    created = stack.api("POST", "/api/v1/dns-credentials/", {
        "provider": "powerdns", "name": "PowerDNS",
        "credentials": {"auth_token": pdns.api_key, "pdns_server": pdns.api_url, "zone": "pdns.test"},
    })
    assert created.status_code == 201, created.text
    tested = stack.api("POST", f"/api/v1/dns-credentials/{created.json()['id']}/test/")
    assert tested.json()["ok"] is True, tested.text
    cert_id = request_certificate(stack, domains=["pdns.test", "*.pdns.test"], challenge="dns-01",
                                  dns_credential=created.json()["id"])
    body = wait_order(stack, cert_id, ("valid", "invalid"))
    assert body["order"]["status"] == "valid", (body["last_error"], body["order"]["log"])
    assert pdns.query("_acme-challenge.pdns.test", "TXT") == []

    # The API key is the secret here: not in any API answer, the database or a log.
    responses = [created.text, tested.text]
    for path in ("/api/v1/dns-credentials/", f"/api/v1/dns-credentials/{created.json()['id']}/",
                 "/api/v1/certificates/", f"/api/v1/certificates/{cert_id}/", "/api/v1/acme-accounts/",
                 "/api/v1/dns-providers/", "/api/v1/sites/", "/api/schema/"):
        response = stack.api("GET", path)
        assert response.status_code == 200, path
        responses.append(response.text)
    assert not [r for r in responses if pdns.api_key in r]
    database = sqlite3.connect(stack.data_dir / "panel.sqlite3")
    dump = "\n".join(database.iterdump())
    database.close()
    assert "auth_token" not in dump and pdns.api_key not in dump  # the whole credential is ciphertext
    for log in stack.log_paths:
        assert pdns.api_key not in log.read_text(errors="replace"), log
