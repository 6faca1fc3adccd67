"""Certificates for servers the panel does not manage (http-01-webroot, -standalone, -nginx,
-apache): admins only, paths only below the configured roots (checked again when presenting);
the webroot mode removes exactly what it wrote, the standalone listener answers only while it
runs and says who holds a busy port."""

import contextlib
import json
import os
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from certs import certificates
from certs.challenges import apache_mode, external, nginx_mode, standalone, webroot
from certs.challenges.external import Presentation
from certs.models import AcmeAccount, Certificate, DnsCredential
from panel.hosting import sites
from panel.models import Site
from tests.support.ports import free_port

pytestmark = pytest.mark.usefixtures("queued")  # tests/conftest.py

EXTERNAL = ["http-01-webroot", "http-01-standalone", "http-01-nginx", "http-01-apache"]


@pytest.fixture
def roots(settings, tmp_path):
    settings.WEBROOT_ROOTS = [tmp_path / "www"]
    settings.EXTERNAL_CONFIG_ROOTS = [tmp_path / "etc"]
    (tmp_path / "www" / "shop").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "shop.conf").write_text("server { server_name shop.example.com; }\n")
    return tmp_path


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def account_of(user):
    return AcmeAccount.objects.create(owner=user, directory_url="https://ca.test/dir", account_key="x",
                                      account_url=f"https://ca.test/acct/{user.pk}")


def request_body(user, **fields):
    return {"domains": ["shop.example.com"], "acme_account": account_of(user).pk, **fields}


# --- who may, and which paths


@pytest.mark.parametrize("challenge", EXTERNAL)
def test_a_user_may_not_validate_on_a_server_the_panel_does_not_manage(alice, roots, challenge):
    # Even for a name of her own site: these modes write into other servers' files and ports.
    sites.save_site(Site(owner=alice, domains=["shop.example.com"], root="/srv/www/shop"))
    answer = api_for(alice).post("/api/v1/certificates/", request_body(alice, challenge=challenge,
                                                                        webroot=str(roots / "www" / "shop")),
                                 format="json")
    assert answer.status_code == 400
    assert "Only administrators" in answer.json()["challenge"][0]
    assert not Certificate.objects.exists()


def test_an_admin_issues_with_a_webroot_below_the_configured_roots(admin_user, roots):
    shop = roots / "www" / "shop"
    answer = api_for(admin_user).post("/api/v1/certificates/", request_body(
        admin_user, challenge="http-01-webroot", webroot=str(shop) + "/"), format="json")
    assert answer.status_code == 201, answer.json()
    assert answer.json()["webroot"] == str(shop)
    assert Certificate.objects.get().webroot == str(shop)


@pytest.mark.parametrize("given, says", [
    ("/etc", "inside one of the allowed directories"),
    ("{www}/missing", "does not exist"),
    ("{www}/../etc", "“..”"),
    ("{www}/escape", "symbolic link"),
    ("", "Give the document root"),
])
def test_a_webroot_outside_the_roots_or_missing_is_refused(admin_user, roots, given, says):
    (roots / "www" / "escape").symlink_to(roots / "etc")
    answer = api_for(admin_user).post("/api/v1/certificates/", request_body(
        admin_user, challenge="http-01-webroot", webroot=given.format(www=roots / "www")), format="json")
    assert answer.status_code == 400
    assert says in answer.json()["webroot"][0]


def test_a_path_given_for_another_mode_is_refused(admin_user, roots):
    api = api_for(admin_user)
    answer = api.post("/api/v1/certificates/", request_body(
        admin_user, challenge="http-01-standalone", webroot=str(roots / "www" / "shop")), format="json")
    assert answer.status_code == 400 and "only used with http-01-webroot" in answer.json()["webroot"][0]
    answer = api.post("/api/v1/certificates/", request_body(
        admin_user, challenge="http-01-webroot", webroot=str(roots / "www" / "shop"),
        server_config=str(roots / "etc" / "shop.conf")), format="json")
    assert answer.status_code == 400 and "http-01-nginx" in answer.json()["server_config"][0]


def test_wildcards_are_refused_for_every_http_mode(admin_user, roots):
    answer = api_for(admin_user).post("/api/v1/certificates/", request_body(
        admin_user, domains=["*.example.com"], challenge="http-01-standalone"), format="json")
    assert answer.status_code == 400 and "DNS-01" in answer.json()["domains"][0]


def test_a_server_config_must_be_an_existing_file_below_the_config_roots(roots):
    config = roots / "etc" / "shop.conf"
    assert external.validate_server_config(str(config)) == str(config)
    (roots / "etc" / "passwd").symlink_to("/etc/passwd")
    for given, says in [("/etc/passwd", "allowed directories"), (str(roots / "etc" / "none.conf"), "does not exist"),
                        (str(roots / "etc" / "passwd"), "symbolic link")]:
        with pytest.raises(ValidationError, match=says):
            external.validate_server_config(given)


@pytest.mark.parametrize("challenge", ["http-01-nginx", "http-01-apache"])
def test_an_admin_issues_through_a_server_config_below_the_configured_roots(admin_user, roots, challenge):
    config = roots / "etc" / "shop.conf"
    answer = api_for(admin_user).post("/api/v1/certificates/", request_body(
        admin_user, challenge=challenge, server_config=str(config)), format="json")
    assert answer.status_code == 201, answer.json()
    assert (answer.json()["challenge"], answer.json()["server_config"]) == (challenge, str(config))


def test_the_nginx_and_apache_modes_check_the_server_config_again_when_presenting(roots, settings):
    settings.EXTERNAL_CONFIG_ROOTS = [roots / "elsewhere"]
    for mode in (nginx_mode, apache_mode):
        with pytest.raises(external.PresentationError, match="allowed directories"):
            mode.present(Certificate(server_config=str(roots / "etc" / "shop.conf")),
                         [Presentation("shop.example.com", "t", "t.k")])


# --- the UI


def test_only_admins_get_the_page_for_another_server(alice_client, admin_client):
    url = reverse("ui:certificate-issue-external")
    assert alice_client.get(url).status_code == 403
    assert url not in alice_client.get(reverse("ui:certificate-list")).content.decode()
    assert url in admin_client.get(reverse("ui:certificate-list")).content.decode()


def test_an_admin_issues_for_another_server_in_the_ui(admin_client, admin_user, roots):
    account = account_of(admin_user)
    url = reverse("ui:certificate-issue-external")
    refused = admin_client.post(url, {"domains": "shop.example.com", "account": account.pk, "key_type": "ec256",
                                      "challenge": "http-01-webroot", "webroot": "/etc"}).content.decode()
    assert "inside one of the allowed directories" in refused and not Certificate.objects.exists()
    answer = admin_client.post(url, {"domains": "shop.example.com, www.shop.example.com", "account": account.pk,
                                     "key_type": "ec256", "challenge": "http-01-webroot",
                                     "webroot": str(roots / "www" / "shop")})
    certificate = Certificate.objects.get()
    assert answer["Location"] == reverse("ui:certificate-detail", args=[certificate.pk])
    assert (certificate.domains, certificate.challenge) == (["shop.example.com", "www.shop.example.com"],
                                                            "http-01-webroot")
    detail = admin_client.get(answer["Location"]).content.decode()
    assert f"HTTP-01, file written under a document root: <code>{roots / 'www' / 'shop'}</code>" in detail


def test_a_sites_issue_form_offers_only_the_panels_own_methods(admin_client, admin_user, roots):
    account = account_of(admin_user)
    site = sites.save_site(Site(owner=admin_user, domains=["a.example.com"], root="/srv/www/a"))
    html = admin_client.get(reverse("ui:site-detail", args=[site.pk])).content.decode()
    assert 'value="dns-01-manual"' in html and "http-01-webroot" not in html
    html = admin_client.post(reverse("ui:certificate-issue", args=[site.pk]), {
        "account": account.pk, "key_type": "ec256", "domains": ["a.example.com"], "challenge": "http-01-standalone",
    }).content.decode()
    assert "not one of the available choices" in html and not Certificate.objects.exists()


# --- webroot: exactly what it wrote


def test_webroot_writes_the_token_and_removes_exactly_what_it_created(roots):
    shop = roots / "www" / "shop"
    certificate = Certificate(webroot=str(shop))
    with webroot.present(certificate, [Presentation("shop.example.com", "tok-1", "tok-1.thumb")]) as state:
        pass
    served = shop / ".well-known" / "acme-challenge" / "tok-1"
    assert served.read_text() == "tok-1.thumb" and oct(served.stat().st_mode & 0o777) == "0o644"
    webroot.cleanup(certificate, state)
    webroot.cleanup(certificate, state)  # twice: nothing to do, no error
    assert list(shop.iterdir()) == []


def test_webroot_keeps_directories_and_files_that_were_there_before(roots):
    shop = roots / "www" / "shop"
    challenge_dir = shop / ".well-known" / "acme-challenge"
    challenge_dir.mkdir(parents=True)
    (challenge_dir / "someone-elses").write_text("keep me")
    certificate = Certificate(webroot=str(shop))
    with webroot.present(certificate, [Presentation("shop.example.com", "tok-2", "tok-2.thumb")]) as state:
        pass
    webroot.cleanup(certificate, state)
    assert sorted(p.name for p in challenge_dir.iterdir()) == ["someone-elses"]


def test_webroot_refuses_a_root_that_left_the_configured_roots(roots, settings):
    settings.WEBROOT_ROOTS = [roots / "elsewhere"]
    with pytest.raises(external.PresentationError, match="allowed directories"):
        with webroot.present(Certificate(webroot=str(roots / "www" / "shop")), [Presentation("a.example", "t", "t.k")]):
            pass
    assert list((roots / "www" / "shop").iterdir()) == []


# --- standalone: only while it runs


def fetch(port, token, host="127.0.0.1"):
    host = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/.well-known/acme-challenge/{token}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_standalone_answers_the_token_only_while_serving():
    port = free_port()
    with standalone.serving({"tok-3": "tok-3.thumb"}, "127.0.0.1", port):
        assert fetch(port, "tok-3") == (200, "tok-3.thumb")
        assert fetch(port, "other")[0] == 404
    with pytest.raises(urllib.error.URLError):
        fetch(port, "tok-3")


def test_standalone_without_an_address_answers_over_ipv4_and_ipv6():
    port = free_port()  # free on 127.0.0.1 and ::1
    with standalone.serving({"tok-5": "tok-5.thumb"}, "", port):
        assert fetch(port, "tok-5", "127.0.0.1") == (200, "tok-5.thumb")
        assert fetch(port, "tok-5", "::1") == (200, "tok-5.thumb")
    for host in ("127.0.0.1", "::1"):
        with pytest.raises(urllib.error.URLError):
            fetch(port, "tok-5", host)


def test_standalone_on_an_ipv6_address_listens_there_only():
    port = free_port()
    with standalone.serving({"tok-6": "tok-6.thumb"}, "[::1]", port):
        assert fetch(port, "tok-6", "::1") == (200, "tok-6.thumb")
        with pytest.raises(urllib.error.URLError):
            fetch(port, "tok-6", "127.0.0.1")


def test_standalone_without_an_address_needs_the_port_free_on_ipv4_too():
    # A web server on the IPv4 port alone: the CA's IPv4 requests would reach it, not the worker.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(standalone.PortUnavailable, match=f"port {port} is in use"):
            with standalone.serving({"tok-7": "k"}, "", port):
                pass
    finally:
        holder.close()


def test_standalone_names_the_port_and_who_holds_it():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(standalone.PortUnavailable) as raised:
            with standalone.serving({"tok-4": "k"}, "127.0.0.1", port):
                pass
    finally:
        holder.close()
    program = Path("/proc/self/comm").read_text().strip()
    assert f"port {port} is in use by {program} (pid {os.getpid()})" in str(raised.value)


# --- the order's clean-up of what a mode presented


class RecordingMode:
    """A mode module that records its clean-ups and fails the first one."""

    def __init__(self):
        self.cleaned = []

    def present(self, certificate, presentations):
        return contextlib.nullcontext({"snippet": "/etc/nginx/acme.inc", "tokens": sorted(p.token for p in presentations)})

    def cleanup(self, certificate, state):
        self.cleaned.append(state)
        if len(self.cleaned) == 1:
            raise external.PresentationError("nginx -t failed")


def test_challenges_presented_together_are_cleaned_up_once_and_retried_after_a_failure(admin_user, roots):
    from certs import orders
    from certs.models import Authorization, Challenge, Order

    mode = RecordingMode()
    certificate = Certificate.objects.create(owner=admin_user, domains=["a.example", "b.example"],
                                             challenge="http-01-nginx", server_config=str(roots / "etc" / "shop.conf"))
    order = Order.objects.create(owner=admin_user, certificate=certificate)
    presented = [Presentation(name, f"tok-{name[0]}", "k") for name in certificate.domains]
    with mock.patch.dict(external.MODES, {"http-01-nginx": "recording_mode"}), \
            mock.patch.dict("sys.modules", {"recording_mode": mode}):
        with external.present(certificate, presented) as state:
            pass
        for presentation in presented:
            authorization = Authorization.objects.create(order=order, url=f"https://ca.test/{presentation.token}",
                                                         identifier=presentation.name)
            Challenge.objects.create(authorization=authorization, type="http-01", url="https://ca.test/c",
                                     token=presentation.token, provider_state=state, presented_at=order.created_at)
        orders._cleanup_challenges(order)
        assert not Challenge.objects.filter(cleaned_up=True).exists()
        assert "nginx -t failed" in order.log_entries.last().text
        orders._cleanup_challenges(order)
        orders._cleanup_challenges(order)
    assert mode.cleaned == [state, state]  # once per presentation: the failed try, then the retry
    assert Challenge.objects.filter(cleaned_up=True).count() == 2


# --- the page for another server speaks in the labels it shows, and offers DNS-01


def test_the_page_for_another_server_names_methods_by_their_labels_and_offers_dns_01(admin_client):
    html = admin_client.get(reverse("ui:certificate-issue-external")).content.decode()
    help_texts = " ".join(re.findall(r'<p class="help"[^>]*>(.*?)</p>', html, re.S))
    assert not re.search(r"http-01-\w+", help_texts)
    assert "For “HTTP-01, file written under a document root”" in help_texts
    assert 'value="dns-01"' in html and 'value="dns-01-manual"' in html
    assert 'name="dns_credential"' in html


def test_an_admin_issues_for_another_server_over_dns_01(admin_client, admin_user, roots):
    account = account_of(admin_user)
    fields = {"server": "127.0.0.1", "port": 53}
    credential = DnsCredential.objects.create(owner=admin_user, provider="rfc2136", name="ns1",
                                              credentials=json.dumps(fields))
    url = reverse("ui:certificate-issue-external")
    body = {"domains": "*.shop.example.com shop.example.com", "account": account.pk,
            "key_type": "ec256", "challenge": "dns-01", "webroot": "/left/over/from/another/method"}
    refused = admin_client.post(url, body).content.decode()
    assert "needs DNS credentials" in refused and not Certificate.objects.exists()
    answer = admin_client.post(url, {**body, "dns_credential": credential.pk})
    certificate = Certificate.objects.get()
    assert answer["Location"] == reverse("ui:certificate-detail", args=[certificate.pk])
    assert certificate.challenge == "dns-01" and certificate.dns_credential == credential
    assert certificate.webroot == ""  # the hidden field's leftover is not kept
    assert certificate.domains == ["*.shop.example.com", "shop.example.com"]
