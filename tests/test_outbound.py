"""The outbound policy (panel.toolkit.outbound): a connection that a user's data causes never
reaches the server's own network unless an administrator allow-listed it, whatever form the
address takes and whichever library connects; and no such connection waits forever.

The destinations are real listeners on loopback; a test asserts that the listener accepted
no connection at all, not only that the panel reported an error."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from certs import dns_credentials, notifications
from certs.challenges import dns01
from certs.dns import propagation
from certs.models import DnsCredential, NotificationChannel
from panel.deployment.nginx import apply
from panel.deployment.nginx.render import render_site
from panel.hosting import sites
from panel.models import PanelSettings, Site
from panel.toolkit import outbound
from tests.support.listener import Listener

ALLOW_HINT = "ask an administrator to add it to the outbound allow-list"


@pytest.fixture
def listener():
    listener = Listener(reply=b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n"
                              b'{"kind": "Master", "rrsets": [], "secret": "internal-body-must-not-leak"}')
    yield listener
    listener.close()


@pytest.fixture
def silent():
    listener = Listener()
    yield listener
    listener.close()


def allow(text):
    PanelSettings.objects.update_or_create(pk=1, defaults={"outbound_allow_list": text})


def powerdns(owner, url):
    return DnsCredential.objects.create(owner=owner, provider="powerdns", name="pdns", credentials=json.dumps(
        {"auth_token": "k", "pdns_server": url, "zone": "example.test"}))


# --- what is internal


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "192.168.1.1",
                                     "169.254.169.254", "169.254.1.1", "100.100.100.200", "100.64.0.1", "0.0.0.0",
                                     "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00::1",
                                     "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
                                     "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2002:7f00:1::1", "ff02::1"])
def test_internal_addresses_are_forbidden(address):
    assert outbound.forbidden_reason(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808"])
def test_internet_addresses_are_not(address):
    assert outbound.forbidden_reason(address) is None


def test_metadata_addresses_say_so():
    for address in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254"):
        assert "metadata" in outbound.forbidden_reason(address)


def test_allow_list_entries_are_addresses_networks_and_ports():
    entries = outbound.parse_allow_list("10.0.0.5:8081\n192.168.1.0/24, [::1]:8053 ::ffff:10.0.0.9")
    assert [str(e) for e in entries] == ["10.0.0.5:8081", "192.168.1.0/24", "[::1]:8053", "10.0.0.9"]
    outbound.check_address("10.0.0.5", 8081, entries)
    outbound.check_address("192.168.1.77", 22, entries)
    outbound.check_address("::1", 8053, entries)
    outbound.check_address("::ffff:10.0.0.5", 8081, entries)
    for ip, port in (("10.0.0.5", 8082), ("192.168.2.1", 80), ("::1", 53), ("127.0.0.1", 8053)):
        with pytest.raises(outbound.OutboundRefused, match=ALLOW_HINT):
            outbound.check_address(ip, port, entries)


@pytest.mark.parametrize("bad", ["example.com", "10.0.0.300", "10.0.0.5:0", "10.0.0.5:99999", "[::1", "[::1]x"])
def test_a_bad_allow_list_entry_is_named(bad):
    with pytest.raises(ValidationError, match="not"):
        outbound.parse_allow_list(f"10.0.0.1 {bad}")


# --- DNS credentials (finding 2)


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "127.1", "0x7f000001", "0", "localhost"])
def test_a_users_dns_credential_cannot_reach_loopback_in_any_form(alice, listener, host):
    credential = powerdns(alice, f"http://{host}:{listener.port}")
    ok, message = dns_credentials.test_credential(credential)
    assert not ok
    assert f"127.0.0.1:{listener.port}" in message or f"0.0.0.0:{listener.port}" in message
    assert ALLOW_HINT in message
    assert listener.accepted == 0


def test_a_name_that_resolves_inward_is_refused_on_the_address(alice, listener, monkeypatch):
    # The system resolver cannot be pointed at a test DNS server without root: this name
    # resolves to loopback the way a customer's DNS record would, through getaddrinfo.
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return real("127.0.0.1" if host == "api.customer-dns.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    credential = powerdns(alice, f"http://api.customer-dns.example:{listener.port}")
    ok, message = dns_credentials.test_credential(credential)
    assert not ok and f"127.0.0.1:{listener.port}" in message and ALLOW_HINT in message
    assert listener.accepted == 0


@pytest.mark.parametrize("body", [b"internal-body-must-not-leak",
                                  b'{"error_code": "APIGW.0101", "error_msg": "internal-body-must-not-leak"}'])
def test_the_test_never_reads_back_the_body(admin_user, body):
    # An administrator may reach loopback; still, whatever the server says stays off the page.
    server = Listener(reply=b"HTTP/1.0 500 Oops\r\nContent-Type: application/json\r\n\r\n" + body)
    values = {"access_key_id": "a", "secret_access_key": "sk-0123456789", "endpoint": f"http://127.0.0.1:{server.port}"}
    credential = DnsCredential.objects.create(owner=admin_user, provider="huaweicloud", name="hw",
                                              credentials=json.dumps(values))
    try:
        ok, message = dns_credentials.test_credential(credential)
    finally:
        server.close()
    assert server.accepted >= 1
    assert not ok and "HTTP 500" in message and "internal-body-must-not-leak" not in message


def test_huawei_endpoints_are_checked_too(alice, listener):
    credential = DnsCredential.objects.create(owner=alice, provider="huaweicloud", name="hw", credentials=json.dumps({
        "iam_username": "u", "iam_password": "p", "iam_domain_name": "d",
        "iam_endpoint": f"http://127.0.0.1:{listener.port}", "zone": "example.com"}))
    ok, message = dns_credentials.test_credential(credential)
    assert not ok and ALLOW_HINT in message and listener.accepted == 0

    credential.credentials = json.dumps({"access_key_id": "a", "secret_access_key": "s",
                                         "endpoint": f"http://[::ffff:127.0.0.1]:{listener.port}"})
    ok, message = dns_credentials.test_credential(credential)
    assert not ok and ALLOW_HINT in message and listener.accepted == 0


@pytest.mark.parametrize("url", ["http://127.0.0.1:8081", "http://127.1:8081", "https://169.254.169.254/"])
def test_a_user_is_told_when_saving_that_an_internal_api_url_will_not_be_reached(alice, admin_user, url):
    values = {"auth_token": "k", "pdns_server": url, "zone": "example.test"}
    with pytest.raises(ValidationError) as refused:
        dns_credentials.clean_values("powerdns", values, owner=alice)
    assert "private, loopback or link-local address" in refused.value.message_dict["credentials"][0]
    assert dns_credentials.clean_values("powerdns", values, owner=admin_user)["pdns_server"] == url
    allow("127.0.0.1 169.254.169.254")
    assert dns_credentials.clean_values("powerdns", values, owner=alice)["pdns_server"] == url


def test_an_rfc2136_server_on_loopback_gets_no_packet(alice):
    while True:  # a free UDP port may be taken for TCP (another test's server): then another one
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket()
        try:
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            break
        except OSError:
            udp.close()
            tcp.close()
    udp.settimeout(0.5)
    tcp.listen(1)
    tcp.settimeout(0.5)
    port = udp.getsockname()[1]
    credential = DnsCredential.objects.create(owner=alice, provider="rfc2136", name="bind", credentials=json.dumps({
        "server": "127.0.0.1", "port": str(port), "tsig_key_name": "k", "tsig_secret": "c2VjcmV0c2VjcmV0",
        "zone": "example.test"}))
    try:
        ok, message = dns_credentials.test_credential(credential)  # an update over TCP
        assert not ok and f"127.0.0.1:{port}" in message and ALLOW_HINT in message
        with pytest.raises(TimeoutError):
            tcp.accept()

        credential.credentials = json.dumps({**credential.values(), "zone": ""})
        cert = type("Cert", (), {"dns_credential": credential})
        challenge = type("Challenge", (), {"record_name": "_acme-challenge.a.example.test", "record_value": "v"})
        with pytest.raises(Exception, match="allow-list"):
            dns01.present(cert, challenge)  # the zone is looked up over UDP first
        with pytest.raises(TimeoutError):
            udp.recvfrom(512)
    finally:
        udp.close()
        tcp.close()


def test_an_allow_listed_destination_is_reached(alice, listener):
    allow(f"127.0.0.1:{listener.port}")
    ok, message = dns_credentials.test_credential(powerdns(alice, f"http://127.0.0.1:{listener.port}"))
    assert listener.accepted >= 1
    assert ALLOW_HINT not in message


def test_a_redirect_to_loopback_is_refused(alice, listener):
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{listener.port}/api/v1/servers/localhost/zones/x")
            self.end_headers()

        def log_message(self, *args):
            pass

    redirector = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=redirector.serve_forever, daemon=True).start()
    try:
        allow(f"127.0.0.1:{redirector.server_port}")  # the first hop is allowed, the second is not
        ok, message = dns_credentials.test_credential(powerdns(alice, f"http://127.0.0.1:{redirector.server_port}"))
    finally:
        redirector.shutdown()
        redirector.server_close()
    assert not ok and f"127.0.0.1:{listener.port}" in message and ALLOW_HINT in message
    assert listener.accepted == 0


def test_a_provider_that_stops_answering_times_out(admin_user, silent, monkeypatch):
    # lexicon's PowerDNS provider calls requests without a timeout: without the guard this never returns.
    monkeypatch.setattr(outbound, "DEFAULT_TIMEOUT", 1.0)
    credential = powerdns(admin_user, f"http://127.0.0.1:{silent.port}")
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(dns_credentials.test_credential(credential)), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=15)
    assert outcome, "the credential test was still waiting after 15 seconds"
    ok, message = outcome[0]
    assert not ok and f"No answer from 127.0.0.1:{silent.port} within 1 seconds" in message
    assert time.monotonic() - started < 10


# --- notification channels (finding 5)


def channel(owner, url):
    return NotificationChannel.objects.create(owner=owner, name="hook", url=url)


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0x7f000001", "localhost"])  # those apprise takes
def test_a_users_webhook_cannot_reach_loopback_in_any_form(alice, listener, host):
    ok, message = notifications.send_test(channel(alice, f"json://{host}:{listener.port}/hook"))
    assert not ok and ALLOW_HINT in message
    assert listener.accepted == 0


def test_numeric_forms_are_refused_when_saved(db):  # db: the allow-list
    # A bare number may be a service token in apprise URLs (tgram://123456:ABC/...): 2130706433
    # is refused when sent, above.
    with pytest.raises(ValidationError, match="administrator"):
        notifications.clean_url("json://0x7f000001/x")


def test_mailto_with_an_internal_smtp_host_is_refused(alice, listener):
    url = f"mailto://user:pass@example.com:{listener.port}?smtp=127.0.0.1&from=a@example.com&to=b@example.com"
    assert notifications.clean_url(url) == url  # the host that counts hides in a query parameter
    ok, message = notifications.send_test(channel(alice, url))
    assert not ok and f"127.0.0.1:{listener.port}" in message and ALLOW_HINT in message
    assert listener.accepted == 0
    assert NotificationChannel.objects.get().last_error == message


def test_an_allow_listed_webhook_is_delivered(alice, receiver):
    url = receiver.url("alice")
    ok, message = notifications.send_test(channel(alice, url))
    assert not ok and receiver.received == []
    allow(f"127.0.0.1:{receiver.server.server_port}")
    ok, message = notifications.send_test(NotificationChannel.objects.get())
    assert ok and len(receiver.to("alice")) == 1


def test_an_administrators_webhook_may_use_loopback(admin_user, receiver):
    ok, _ = notifications.send_test(channel(admin_user, receiver.url("admin")))
    assert ok and len(receiver.to("admin")) == 1


# --- site upstreams (finding 4)


@pytest.mark.parametrize("upstream", ["http://169.254.169.254/", "http://100.100.100.200/latest/meta-data",
                                      "http://10.0.0.5:8080", "http://192.168.1.1", "http://[::1]:3000",
                                      "http://127.1:3000", "http://2130706433:3000", "http://redis:6379",
                                      "http://postgres:5432", "http://localhost:3000", "http://[fd00:ec2::254]"])
def test_a_users_upstream_cannot_be_internal(alice, upstream):
    with pytest.raises(ValidationError) as error:
        sites.clean_site_fields(["a.example.com"], "", upstream, actor=alice)
    assert "proxy_pass" in error.value.message_dict


def test_an_administrator_may_proxy_anywhere_and_a_user_where_allowed(alice, admin_user):
    assert sites.clean_site_fields(["a.example.com"], "", "http://10.0.0.5:8080", actor=admin_user)[2]
    allow("10.0.0.0/24")
    assert sites.clean_site_fields(["a.example.com"], "", "http://10.0.0.5:8080", actor=alice)[2]
    with pytest.raises(ValidationError):
        sites.clean_site_fields(["a.example.com"], "", "http://10.0.1.5:8080", actor=alice)


def test_the_site_form_says_why(alice_client):
    response = alice_client.post(reverse("ui:site-add"), {"domains": "a.example.com",
                                                          "proxy_pass": "http://169.254.169.254/"})
    assert "cloud metadata address" in response.content.decode() and ALLOW_HINT in response.content.decode()
    assert Site.objects.count() == 0


def test_an_upstream_is_checked_again_when_nginx_config_is_written(alice, settings, tmp_path):
    # Saved before the policy (or resolving elsewhere then): the apply refuses it and writes nothing.
    settings.NGINX_VHOST_DIR = tmp_path / "sites"
    site = Site.objects.create(owner=alice, domains=["a.example.com"], proxy_pass="http://169.254.169.254/")
    outcome = apply.apply_site_config(site)
    assert not outcome.ok and "metadata" in outcome.error
    site.refresh_from_db()
    assert site.config_status == Site.ConfigStatus.FAILED and ALLOW_HINT in site.config_error
    assert not (tmp_path / "sites" / site.config_name).exists()


def test_nginx_gets_the_checked_address_of_a_users_upstream_never_the_name(alice, admin_user, monkeypatch):
    # nginx resolves a name again at every reload: a record pointed inward after the check would win.
    answers = {"app.customer.example": "93.184.216.34"}
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(answers.get(host, host), *a, **k))
    site = Site(owner=alice, domains=["a.example.com"], proxy_pass="http://app.customer.example:8080/api")
    upstream, refused = apply.vetted_upstream(site)
    assert (upstream, refused) == ("http://93.184.216.34:8080/api", None)
    config = render_site(site, apply.layout(), upstream)
    assert "proxy_pass http://93.184.216.34:8080/api;" in config and "app.customer.example" not in config
    answers["app.customer.example"] = "127.0.0.1"
    upstream, refused = apply.vetted_upstream(site)
    assert upstream == "" and "127.0.0.1" in str(refused) and ALLOW_HINT in str(refused)
    admins = Site(owner=admin_user, domains=["b.example.com"], proxy_pass="http://app.customer.example:8080/api")
    assert apply.vetted_upstream(admins) == ("http://app.customer.example:8080/api", None)


def test_a_live_vhost_whose_upstream_is_refused_now_is_taken_down(alice, settings, tmp_path, monkeypatch):
    settings.NGINX_VHOST_DIR = tmp_path / "sites"
    reloads = []
    monkeypatch.setattr(apply, "request_reload", lambda: reloads.append(1))
    site = Site.objects.create(owner=alice, domains=["a.example.com"], proxy_pass="http://127.0.0.1:3000")
    live = tmp_path / "sites" / site.config_name
    live.parent.mkdir(parents=True)
    live.write_text("server { location / { proxy_pass http://127.0.0.1:3000; } }\n")  # written before the policy
    outcome = apply.apply_site_config(site)
    assert not outcome.ok and "loopback" in outcome.error
    assert not live.exists() and reloads == [1]


def test_a_users_zone_with_internal_name_servers_gets_no_query(db, settings, monkeypatch):  # db: the allow-list
    # The zone's owner publishes its NS records: they may name 10.x or 127.0.0.1.
    settings.DNS_RESOLVERS = []
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.5)
    monkeypatch.setattr(propagation, "authoritative_servers", lambda name: [server.getsockname()])
    monkeypatch.setattr(propagation, "TIMEOUT", 0.5)
    try:
        missing = propagation.missing_records([("_acme-challenge.a.example.com", "v")], internal_allowed=False)
        assert [m.server for m in missing] == ["(only internal name servers, not asked: 127.0.0.1)"]
        with pytest.raises(TimeoutError):
            server.recvfrom(512)  # nothing came
        propagation.missing_records([("_acme-challenge.a.example.com", "v")], internal_allowed=True)
        assert server.recvfrom(512)[0]  # an administrator's order asks it, as before
    finally:
        server.close()


# --- the Settings page


def test_only_an_administrator_edits_the_allow_list(alice_client, admin_client):
    assert alice_client.post(reverse("ui:settings"), {"outbound_allow_list": "10.0.0.0/8"}).status_code == 403
    assert PanelSettings.load().outbound_allow_list == ""

    response = admin_client.post(reverse("ui:settings"), {"outbound_allow_list": "10.0.0.5:8081, 192.168.1.0/24"})
    assert response.status_code == 302
    assert PanelSettings.load().outbound_allow_list == "10.0.0.5:8081\n192.168.1.0/24"
    assert "192.168.1.0/24" in admin_client.get(reverse("ui:settings")).content.decode()

    response = admin_client.post(reverse("ui:settings"), {"outbound_allow_list": "10.0.0.5 intranet"})
    assert "“intranet” is not an IP address" in response.content.decode()
    assert PanelSettings.load().outbound_allow_list == "10.0.0.5:8081\n192.168.1.0/24"
