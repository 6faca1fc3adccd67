"""Smoke tests of the end-to-end harness itself (tests/support)."""

import signal

import dns.message
import dns.query
import dns.rdatatype
import pytest
import requests
from cryptography import x509

from tests.support import parse_nginx_command, tls_peer_certificate


def test_pebble_directory_and_issuing_chain(pebble):
    directory = pebble.directory()
    for key in ("newNonce", "newAccount", "newOrder"):
        assert key in directory
    # The listener CA written for CERTPANEL_CA_BUNDLE is what verifies Pebble's HTTPS.
    assert requests.get(pebble.directory_url, verify=str(pebble.ca_bundle_path), timeout=5).ok

    intermediate = x509.load_pem_x509_certificate(pebble.intermediate_pem().encode())
    root = x509.load_pem_x509_certificate(pebble.root_pem().encode())
    assert intermediate.issuer == root.subject
    assert intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_challtestsrv_resolves_every_name_to_ipv4_loopback_only(pebble):
    host, port = pebble.dns_address.split(":")

    def query(name, rdtype):
        return dns.query.udp(dns.message.make_query(name, rdtype), host, port=int(port), timeout=3)

    a = query("anything.example.test.", dns.rdatatype.A)
    assert [r.address for rrset in a.answer for r in rrset] == ["127.0.0.1"]
    assert query("anything.example.test.", dns.rdatatype.AAAA).answer == []

    pebble.add_txt_record("_acme-challenge.example.test.", "token-value")
    txt = query("_acme-challenge.example.test.", dns.rdatatype.TXT)
    assert [s for rrset in txt.answer for r in rrset for s in r.strings] == [b"token-value"]


def test_redis_server_answers(redis_server):
    assert redis_server.ping()
    assert redis_server.url.startswith("redis://127.0.0.1:")


def test_parse_nginx_command():
    printed = "/usr/sbin/nginx -p /t/nginx/ -e /t/nginx/logs/error.log -c /t/nginx/nginx.conf -g daemon off;"
    assert parse_nginx_command("noise\n" + printed + "\n")[-2:] == ["-g", "daemon off;"]
    quoted = "/usr/sbin/nginx -p /t/ -c /t/nginx.conf -g 'daemon off;'"
    assert parse_nginx_command(quoted)[-2:] == ["-g", "daemon off;"]


def _assert_stack_basics(stack):
    # nginx: the private main config's default servers.
    assert stack.http_get("unknown-host.invalid").status_code == 404
    fallback = tls_peer_certificate("127.0.0.1", stack.https_port, "unknown-host.invalid")
    assert fallback.subject.rfc4514_string() == "CN=CertPanel: no site has this name"
    # web: the schema, and the token from `manage.py create_api_token`.
    assert stack.api("GET", "/api/schema/").status_code == 200
    assert stack.api("GET", "/api/v1/sites/").status_code == 200
    assert requests.get(stack.web_url + "/api/v1/sites/", timeout=10).status_code in (401, 403)
    assert stack.worker_alive


def test_panel_stack_starts_and_its_worker_can_be_killed_and_replaced(panel_stack):
    # One stack for both (a stack takes ~30 s to start).
    _assert_stack_basics(panel_stack)
    assert panel_stack.nginx.alive and panel_stack.web.alive

    first = panel_stack.worker
    panel_stack.kill_worker(signal.SIGKILL)
    assert not first.alive
    assert not panel_stack.worker_alive
    second = panel_stack.start_worker()
    assert second is panel_stack.worker and second.alive and second.pid != first.pid


@pytest.mark.panel_stack(database_url="postgres")
def test_panel_stack_on_postgresql(panel_stack):
    assert panel_stack.database_url.startswith("postgresql://")
    _assert_stack_basics(panel_stack)
