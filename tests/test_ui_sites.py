"""The site pages: edit, delete, the force-HTTPS switch, and the site page's tabs (the SSL
tab's certificate details, the nginx config tab's preview), for an owner and an outsider.

Nothing reaches Celery: panel.deployment.dispatch.APPLY_SITE is a mock (tests/conftest.py `queued`), and so
is panel.deployment.dispatch.REMOVE_SITE where a deletion is committed.
"""

import datetime
import re
import subprocess
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from certs.models import AcmeAccount, Certificate, CertificateVersion, KeyType
from panel.hosting import sites
from panel.models import PanelSettings, Site, SiteDomain

pytestmark = pytest.mark.usefixtures("queued")  # tests/conftest.py


@pytest.fixture
def www_root(settings, tmp_path):
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    return tmp_path / "www"


@pytest.fixture
def site(alice, www_root):
    return sites.save_site(Site(owner=alice, domains=["a.example.com", "www.a.example.com"],
                                root=str(www_root / "a")))


@pytest.fixture
def issued(site, tmp_path):
    """A real self-signed certificate (made by openssl) stored as the site's current version."""
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "30", "-subj", "/CN=a.example.com", "-keyout", key_file, "-out", cert_file],
                   check=True, capture_output=True)
    now = timezone.now()
    account = AcmeAccount.objects.create(owner=site.owner, directory_url="https://ca.test/directory",
                                         account_key="unused", account_url="https://ca.test/acct/1")
    certificate = Certificate.objects.create(owner=site.owner, site=site, account=account, domains=site.domains,
                                             key_type=KeyType.EC256, status=Certificate.Status.VALID)
    version = CertificateVersion.objects.create(
        certificate=certificate, cert_pem=cert_file.read_text(), chain_pem=cert_file.read_text(),
        private_key=key_file.read_text(), serial="5e41a1", issuer="CN=a.example.com",
        not_before=now - datetime.timedelta(hours=1), not_after=now + datetime.timedelta(days=30),
    )
    Certificate.objects.filter(pk=certificate.pk).update(current_version=version)
    return version


def page_text(response):
    return response.content.decode()


def field_error(html, field):
    """The text of a field's inline error list, or None."""
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.DOTALL)
    return match and match.group(1)


def tab_panel(html, panel_id):
    """The opening tag of a tab panel of the site page."""
    return re.search(rf'<div class="tab-panel[^"]*" id="{panel_id}">', html).group(0)


EDIT = {"domains": "a.example.com\nshop.example.com", "proxy_pass": "http://127.0.0.1:3000",
        "hsts": "on", "http2": "on"}


# --- the site page: tabs and links


def test_the_site_page_has_overview_ssl_and_nginx_tabs_and_links_edit_and_delete(alice_client, site):
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    for fragment in ("#overview", "#certificate", "#nginx-config"):
        assert f'href="{fragment}"' in html
    assert "tab-panel--default" in tab_panel(html, "overview")  # shown when the URL names no tab
    assert "tab-panel--default" not in tab_panel(html, "certificate")
    assert f'href="{reverse("ui:site-edit", args=[site.pk])}"' in html
    assert f'href="{reverse("ui:site-delete", args=[site.pk])}"' in html
    ssl_tab = html[html.index('id="certificate"'):html.index('id="nginx-config"')]
    assert f'href="{reverse("ui:certificate-upload")}?site={site.pk}"' in ssl_tab  # next to issuing


def test_an_issue_form_with_errors_comes_back_on_the_ssl_tab(alice_client, site):
    response = alice_client.post(reverse("ui:certificate-issue", args=[site.pk]), {"key_type": "ec256"})
    html = page_text(response)
    assert field_error(html, "account")
    assert "tab-panel--default" in tab_panel(html, "certificate")
    assert "tab-panel--default" not in tab_panel(html, "overview")


# --- edit


def test_the_edit_form_is_filled_with_the_site(alice_client, site):
    html = page_text(alice_client.get(reverse("ui:site-edit", args=[site.pk])))
    assert re.search(r"<textarea[^>]*>\s*a.example.com\nwww.a.example.com</textarea>", html)
    assert f'value="{site.root}"' in html


def test_editing_stores_the_new_names_and_applies_nginx_again(alice_client, site, queued,
                                                               django_capture_on_commit_callbacks):
    queued.apply_site.delay.reset_mock()  # the fixture's own save
    # A user's upstream on loopback needs the administrator's allow-list (tests/test_outbound.py).
    PanelSettings.objects.create(pk=1, outbound_allow_list="127.0.0.1:3000")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("ui:site-edit", args=[site.pk]), EDIT)
    assert response.status_code == 302 and response["Location"] == reverse("ui:site-detail", args=[site.pk])
    site.refresh_from_db()
    assert site.domains == ["a.example.com", "shop.example.com"] and site.primary_domain == "a.example.com"
    assert (site.root, site.proxy_pass, site.hsts, site.force_https) == ("", "http://127.0.0.1:3000", True, False)
    assert site.config_status == Site.ConfigStatus.PENDING
    assert sorted(SiteDomain.objects.filter(site=site).values_list("name", flat=True)) == [
        "a.example.com", "shop.example.com"]
    queued.apply_site.delay.assert_called_once_with(site.pk)


def test_a_name_another_site_has_is_an_inline_error_and_changes_nothing(alice_client, bob, site, www_root, queued,
                                                                        django_capture_on_commit_callbacks):
    sites.save_site(Site(owner=bob, domains=["taken.example.com"], root=str(www_root / "b")))
    queued.apply_site.delay.reset_mock()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("ui:site-edit", args=[site.pk]),
                                     {**EDIT, "domains": "a.example.com taken.example.com"})
    assert response.status_code == 200
    assert "Already used by another site: taken.example.com" in field_error(page_text(response), "domains")
    site.refresh_from_db()
    assert site.domains == ["a.example.com", "www.a.example.com"] and site.root and not site.proxy_pass
    assert SiteDomain.objects.get(name="taken.example.com").site.owner == bob
    queued.apply_site.delay.assert_not_called()


# --- delete


def test_delete_asks_first_then_removes_the_site_and_keeps_its_certificate(alice_client, site, issued,
                                                                           django_capture_on_commit_callbacks):
    url = reverse("ui:site-delete", args=[site.pk])
    html = page_text(alice_client.get(url))
    assert "Its nginx config is removed" in html and "a.example.com, www.a.example.com" in html
    assert "It stays under Certificates" in html
    assert re.search(r'<input type="radio" name="certificates" value="keep"[^>]*checked', html)
    assert re.search(r'<form method="post" class="form">', html)
    assert Site.objects.filter(pk=site.pk).exists()  # asking deleted nothing

    with mock.patch("panel.deployment.dispatch.REMOVE_SITE") as remove_site, django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(url)
    assert response["Location"] == reverse("ui:site-list")
    assert not Site.objects.filter(pk=site.pk).exists()
    assert not SiteDomain.objects.filter(name="a.example.com").exists()  # the names are free again
    remove_site.delay.assert_called_once_with(site.pk)
    certificate = Certificate.objects.get(pk=issued.certificate_id)
    assert certificate.site is None and certificate.current_version_id == issued.pk


# --- one-click force HTTPS


def test_the_force_https_switch_turns_the_redirect_on_and_off_and_applies_nginx(
        alice_client, site, issued, queued, django_capture_on_commit_callbacks):
    url = reverse("ui:site-force-https", args=[site.pk])
    page = reverse("ui:site-detail", args=[site.pk])
    assert re.search(r'<button type="submit" class="switch" name="force_https" value="on"\s+aria-pressed="false">',
                     page_text(alice_client.get(page)))
    queued.apply_site.delay.reset_mock()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(url, {"force_https": "on"})
    assert response["Location"] == page + "#certificate"
    site.refresh_from_db()
    assert site.force_https
    queued.apply_site.delay.assert_called_once_with(site.pk)
    html = page_text(alice_client.get(page))
    assert re.search(r'name="force_https" value="off"\s+aria-pressed="true"', html)
    assert "HTTP now redirects to HTTPS" in html

    alice_client.post(url, {"force_https": "on"})  # a second click of the same state keeps it
    site.refresh_from_db()
    assert site.force_https
    alice_client.post(url, {"force_https": "off"})
    site.refresh_from_db()
    assert not site.force_https


def test_the_force_https_switch_takes_only_a_post(alice_client, site):
    assert alice_client.get(reverse("ui:site-force-https", args=[site.pk])).status_code == 405


def test_force_https_without_a_certificate_says_it_waits_for_one(alice_client, site):
    Site.objects.filter(pk=site.pk).update(force_https=True)
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert "Takes effect once the site has a certificate" in html


# --- outsiders


def test_an_outsider_gets_404_for_edit_delete_switch_and_preview(bob_client, site, queued):
    queued.apply_site.delay.reset_mock()
    urls = [reverse(name, args=[site.pk])
            for name in ("ui:site-edit", "ui:site-delete", "ui:site-force-https", "ui:site-config-preview")]
    for url in urls:
        assert bob_client.post(url, {**EDIT, "force_https": "on"}).status_code == 404
    for url in (urls[0], urls[1], urls[3]):
        assert bob_client.get(url).status_code == 404
    site.refresh_from_db()
    assert site.domains == ["a.example.com", "www.a.example.com"] and not site.force_https
    queued.apply_site.delay.assert_not_called()


# --- SSL tab: the certificate's details


def test_the_ssl_tab_shows_the_fingerprint_openssl_computes(alice_client, site, issued, tmp_path):
    openssl = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", tmp_path / "cert.pem"],
                             check=True, capture_output=True, text=True).stdout
    fingerprint = openssl.strip().split("=", 1)[1]  # "sha256 Fingerprint=AB:CD:..."
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fingerprint)
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert re.search(rf"<dt>SHA-256 fingerprint</dt><dd><code class=\"wrap\">{fingerprint}</code></dd>", html)
    assert "5e41a1" in html and "CN=a.example.com" in html and "EC P-256" in html


# --- nginx config tab


def test_the_preview_shows_the_vhost_with_the_key_path_and_never_the_key(alice_client, site, issued):
    html = page_text(alice_client.get(reverse("ui:site-config-preview", args=[site.pk])))
    assert "server_name a.example.com www.a.example.com;" in html
    # The names map says which file nginx reads the certificate and key from.
    key_path = re.search(r"^a\.example\.com (\S+);$", html, re.MULTILINE).group(1)
    assert key_path.endswith(f"/served/site-{site.pk}.pem")
    assert "PRIVATE KEY" not in html
    key_body = [line for line in issued.private_key.splitlines() if line and not line.startswith("-----")]
    assert not any(line in html for line in key_body)
    assert "<script" not in html


def test_the_nginx_tab_shows_the_last_apply_result_and_loads_the_preview(alice_client, site):
    applied = timezone.now().replace(year=2030, month=1, day=2, hour=3, minute=4)
    Site.objects.filter(pk=site.pk).update(config_status=Site.ConfigStatus.FAILED, config_applied_at=applied,
                                           config_error='nginx: [emerg] unknown directive "bogus"')
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    nginx_tab = html[html.index('id="nginx-config"'):]
    assert "Last applied 2030-01-02 03:04 UTC." in nginx_tab
    assert "nginx: [emerg] unknown directive &quot;bogus&quot;" in nginx_tab
    assert f'hx-get="{reverse("ui:site-config-preview", args=[site.pk])}"' in nginx_tab


# --- the site list: row actions, the way to a certificate, the config filter, phone layout


def site_row(html, site):
    """The <tr> of the site list that links to `site`'s page."""
    rows = re.findall(r"<tr>.*?</tr>", html, re.DOTALL)
    return next(row for row in rows if f'href="{reverse("ui:site-detail", args=[site.pk])}"' in row)


def test_each_site_row_offers_ssl_settings_and_delete(alice_client, site):
    row = site_row(page_text(alice_client.get(reverse("ui:site-list"))), site)
    detail = reverse("ui:site-detail", args=[site.pk])
    assert re.search(rf'<a class="button button--small" href="{detail}#certificate">SSL</a>', row)
    assert f'href="{reverse("ui:site-edit", args=[site.pk])}">Settings</a>' in row
    assert f'href="{reverse("ui:site-delete", args=[site.pk])}">Delete</a>' in row


def test_a_site_without_a_certificate_links_none_to_its_ssl_tab(alice_client, site, www_root, alice,
                                                                issued):
    bare = sites.save_site(Site(owner=alice, domains=["bare.example.com"],
                                root=str(www_root / "bare")))
    html = page_text(alice_client.get(reverse("ui:site-list")))
    none_link = re.compile(r'<a href="[^"]*#certificate"[^>]*>None</a>')
    link = none_link.search(site_row(html, bare))
    assert link and f'{reverse("ui:site-detail", args=[bare.pk])}#certificate' in link[0]
    assert not none_link.search(site_row(html, site))  # issued: its badge, not "None"


def test_the_config_filter_lists_only_sites_nginx_rejected(alice_client, site, www_root, alice):
    broken = sites.save_site(Site(owner=alice, domains=["broken.example.com"],
                                  root=str(www_root / "b")))
    Site.objects.filter(pk=broken.pk).update(config_status=Site.ConfigStatus.FAILED,
                                             config_error="[emerg] x")
    html = page_text(alice_client.get(reverse("ui:site-list"), {"config": "failed"}))
    assert "broken.example.com" in html and "a.example.com" not in html
    assert "Showing only: <strong>Rejected by nginx</strong>" in html
    assert '<input type="hidden" name="config" value="failed">' in html  # a search keeps the filter
    everything = page_text(alice_client.get(reverse("ui:site-list"), {"config": "nonsense"}))
    assert "broken.example.com" in everything and "a.example.com" in everything


def test_on_a_phone_site_rows_stack_with_labels_and_the_certificate_first(alice_client, site):
    html = page_text(alice_client.get(reverse("ui:site-list")))
    assert '<table class="table table--stack">' in html
    row = site_row(html, site)
    assert re.search(r'<td class="stack-first" data-label="Certificate">', row)
    assert re.search(r'<td data-label="Type">Static</td>', row)


# --- the deploy status follows nginx without a reload


def test_a_pending_site_page_polls_its_status_until_it_is_final(alice_client, site):
    status_url = reverse("ui:site-config-status", args=[site.pk])
    assert site.config_status == Site.ConfigStatus.PENDING
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert re.search(rf'<div id="config-status-poll" hidden hx-get="{status_url}" '
                     r'hx-trigger="every 2s"', html)

    still = page_text(alice_client.get(status_url))  # the worker has not got to it yet: ask again
    assert f'hx-get="{status_url}"' in still and 'data-config-status="pending"' in still

    Site.objects.filter(pk=site.pk).update(config_status=Site.ConfigStatus.FAILED,
                                           config_error="[emerg] bogus")
    final = page_text(alice_client.get(status_url))
    assert "hx-get" not in final  # polling stops
    for badge in ("config-status-head", "config-status-overview"):
        assert re.search(rf'<span class="badge badge--failed" id="{badge}" '
                         r'data-config-status="failed" hx-swap-oob="true">Rejected by nginx</span>',
                         final)
    assert re.search(r'<section class="card" id="last-apply" hx-swap-oob="true">.*\[emerg\] bogus',
                     final, re.S)

    Site.objects.filter(pk=site.pk).update(config_status=Site.ConfigStatus.APPLIED)
    page = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert "hx-get=\"" + status_url not in page  # nothing to follow on an applied site


def test_the_deploy_status_is_only_for_the_sites_owner(bob_client, site):
    assert bob_client.get(reverse("ui:site-config-status", args=[site.pk])).status_code == 404


def test_force_https_without_a_certificate_does_not_claim_http_redirects(alice_client, site):
    html = page_text(alice_client.post(reverse("ui:site-force-https", args=[site.pk]),
                                       {"force_https": "on"}, follow=True))
    assert "HTTP now redirects to HTTPS" not in html
    assert "HTTP will redirect to HTTPS once the site serves a certificate" in html
