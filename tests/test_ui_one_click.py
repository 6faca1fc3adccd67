"""One click to HTTPS: the administrator's default CA, registering a user there from a site's SSL
tab on the way to a certificate, and the "add … first" detours that come back to the SSL tab.

The CA is faked at certs.accounts.new_client (as in tests/test_ui.py); nothing reaches Celery
(tests/conftest.py's `queued`)."""

import json
import re
from unittest import mock

import pytest
from django.urls import reverse
from django.utils.html import escape

from certs import cas
from certs.acme import AcmeError
from certs.models import AcmeAccount, Certificate, DnsCredential, Order
from panel.hosting import sites
from panel.models import PanelSettings, Site, UserQuota
from panel.toolkit.navigation import local_path

pytestmark = pytest.mark.usefixtures("queued")

LETS_ENCRYPT = cas.PRESETS["letsencrypt"].directory_url


class FakeCA:
    """Registration only: what one click asks of the CA before the order's task takes over."""

    def __init__(self, error=None):
        self.error, self.registered = error, []

    def register(self, email, eab_kid, eab_hmac_key):
        if self.error:
            raise self.error
        self.registered.append(email)
        return f"https://ca.test/acct/{len(self.registered)}"


@pytest.fixture
def site(alice, settings, tmp_path):
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    alice.email = "alice@example.com"
    alice.save()
    return sites.save_site(Site(owner=alice, domains=["a.example.com", "www.a.example.com"],
                                root=str(tmp_path / "www" / "a")))


def ssl_tab(site):
    return reverse("ui:site-detail", args=[site.pk]) + "#certificate"


def one_click(client, site, headers=None, **data):
    return client.post(reverse("ui:certificate-one-click", args=[site.pk]), data, headers=headers)


def page_text(response):
    return response.content.decode()


def test_the_ssl_tab_offers_the_default_ca_in_one_click_with_its_terms(alice_client, site):
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    button = r'<button type="submit" class="button button--primary">Let&#x27;s Encrypt</button>'
    assert re.search(button, html)
    assert 'href="https://letsencrypt.org/repository/"' in html and "terms of service" in html
    assert re.search(r'<input type="email" name="email" value="alice@example.com"', html)
    assert "Add an ACME account first" not in html


def test_one_click_registers_at_the_default_ca_and_starts_the_order(
        alice_client, alice, site, queued, django_capture_on_commit_callbacks):
    ca = FakeCA()
    with mock.patch("certs.accounts.new_client", return_value=ca) as new_client, \
            django_capture_on_commit_callbacks(execute=True):
        response = one_click(alice_client, site, email="ops@example.com")
    assert response["Location"] == ssl_tab(site)
    assert new_client.call_args.args[0] == LETS_ENCRYPT and ca.registered == ["ops@example.com"]
    account = AcmeAccount.objects.get()
    assert (account.owner, account.directory_url, account.email) == (alice, LETS_ENCRYPT,
                                                                      "ops@example.com")
    certificate = Certificate.objects.get()
    assert (certificate.site, certificate.account) == (site, account)
    assert certificate.challenge == "http-01"
    assert certificate.domains == ["a.example.com", "www.a.example.com"]
    order = Order.objects.get()
    queued.enqueue.assert_called_once_with(order.pk, order.wakeup, 0)

    html = page_text(alice_client.get(response["Location"]))
    assert f'hx-get="{reverse("ui:order-status", args=[order.pk])}"' in html  # the live order log
    assert reverse("ui:certificate-one-click", args=[site.pk]) not in html  # no second account


def test_with_an_account_at_the_default_ca_the_issue_form_stays(alice_client, alice, site):
    AcmeAccount.objects.create(owner=alice, directory_url=LETS_ENCRYPT, account_key="unused",
                               account_url="https://ca.test/acct/1")
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert reverse("ui:certificate-one-click", args=[site.pk]) not in html
    assert "Issue certificate" in html


def test_an_account_elsewhere_keeps_the_issue_form_beside_the_one_click(alice_client, alice, site):
    AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/directory",
                               account_key="unused", account_url="https://ca.test/acct/1")
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert reverse("ui:certificate-one-click", args=[site.pk]) in html
    assert "Issue certificate" in html


def test_a_refused_registration_says_so_on_the_ssl_tab_and_leaves_nothing(alice_client, site):
    ca = FakeCA(AcmeError("cannot reach the CA: HTTPSConnectionPool(host='acme-v02.api.letsencrypt.org', "
                          "port=443): Max retries exceeded", cause="connect"))
    with mock.patch("certs.accounts.new_client", return_value=ca):
        response = one_click(alice_client, site, email="", headers={"accept-language": "zh-hans"})
    html = page_text(response)
    assert response.status_code == 200
    assert 'class="tab-panel tab-panel--default" id="certificate"' in html
    # The cause and what to do in the reader's language; the library's words only in the fold-out.
    assert "无法连接到 CA：请检查服务器能否访问 acme-v02.api.letsencrypt.org" in html
    lead, fold_out = html.split('<details class="failure__raw">', 1)
    assert "HTTPSConnectionPool" not in lead and "HTTPSConnectionPool" in fold_out
    assert not AcmeAccount.objects.exists() and not Certificate.objects.exists()
    assert not Order.objects.exists()


def test_one_click_checks_the_quota_and_the_email_before_asking_the_ca(alice_client, alice, site):
    with mock.patch("certs.accounts.new_client") as new_client:
        response = one_click(alice_client, site, email="not an address")
        assert re.search(r'id="id_email_error"', page_text(response))
        UserQuota.objects.create(user=alice, max_certificates=0)
        response = one_click(alice_client, site, email="")
    assert response.status_code == 200 and "alert--error" in page_text(response)
    new_client.assert_not_called()
    assert not AcmeAccount.objects.exists() and not Certificate.objects.exists()


def test_the_administrator_chooses_the_default_ca_among_those_without_eab(
        admin_client, alice_client, site):
    html = page_text(admin_client.get(reverse("ui:settings")))
    assert re.search(r'<option value="letsencrypt" selected>', html)
    assert 'value="letsencrypt-staging"' in html and 'value="zerossl"' not in html
    response = admin_client.post(reverse("ui:settings"), {"default_ca": "zerossl"})
    assert response.status_code == 200 and PanelSettings.load().default_ca == "letsencrypt"
    response = admin_client.post(reverse("ui:settings"), {"default_ca": "letsencrypt-staging"})
    assert response["Location"] == reverse("ui:settings")
    assert PanelSettings.load().default_ca == "letsencrypt-staging"

    assert "Let&#x27;s Encrypt (staging)</button>" in page_text(
        alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    with mock.patch("certs.accounts.new_client", return_value=FakeCA()) as new_client:
        one_click(alice_client, site)
    staging = cas.PRESETS["letsencrypt-staging"].directory_url
    assert new_client.call_args.args[0] == staging
    assert AcmeAccount.objects.get().directory_url == staging


# --- detours that come back


def test_the_ssl_tab_sends_its_detours_with_the_way_back(alice_client, alice, site):
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    back = f"next=%2Fsites%2F{site.pk}%2F%23certificate"
    assert f'href="{reverse("ui:account-add")}?{back}"' in html
    AcmeAccount.objects.create(owner=alice, directory_url=LETS_ENCRYPT, account_key="unused",
                               account_url="https://ca.test/acct/1")
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert f'href="{reverse("ui:dns-credential-add")}?{back}"' in html


def test_adding_an_account_returns_to_the_ssl_tab(alice_client, site):
    html = page_text(alice_client.get(reverse("ui:account-add"), {"next": ssl_tab(site)}))
    assert f'<input type="hidden" name="next" value="{ssl_tab(site)}">' in html
    with mock.patch("certs.accounts.new_client", return_value=FakeCA()):
        response = alice_client.post(reverse("ui:account-add"),
                                     {"ca": "letsencrypt", "next": ssl_tab(site)})
    assert response["Location"] == ssl_tab(site)
    assert AcmeAccount.objects.count() == 1


@pytest.mark.parametrize("elsewhere", ["https://evil.example/", "//evil.example/x",
                                       "/\\evil.example", "javascript:alert(1)"])
def test_a_detour_never_returns_to_another_host(alice_client, elsewhere):
    html = page_text(alice_client.get(reverse("ui:account-add"), {"next": elsewhere}))
    assert f'name="next" value="{escape(elsewhere)}"' not in html
    with mock.patch("certs.accounts.new_client", return_value=FakeCA()):
        response = alice_client.post(reverse("ui:account-add"),
                                     {"ca": "letsencrypt", "next": elsewhere})
    assert response["Location"] == reverse("ui:account-list")
    response = alice_client.post(reverse("ui:dns-credential-add"), {**DNS_FORM, "next": elsewhere})
    credential = DnsCredential.objects.get()
    assert response["Location"] == reverse("ui:dns-credential-detail", args=[credential.pk])


DNS_FORM = {
    "provider": "rfc2136", "name": "Office BIND", "cred_server": "192.0.2.53", "cred_port": "5353",
    "cred_zone": "example.com", "cred_tsig_key_name": "certpanel-key",
    "cred_tsig_algorithm": "hmac-sha256",
    "cred_tsig_secret": "c2VjcmV0LXRzaWcta2V5LWZvci10aGUtdWktdGVzdHM=", "propagation_timeout": "90",
}


def test_adding_dns_credentials_returns_to_the_ssl_tab(alice_client, site):
    chooser = page_text(alice_client.get(reverse("ui:dns-credential-add"), {"next": ssl_tab(site)}))
    assert f'<input type="hidden" name="next" value="{ssl_tab(site)}">' in chooser
    form = page_text(alice_client.get(reverse("ui:dns-credential-add"),
                                      {"provider": "rfc2136", "next": ssl_tab(site)}))
    assert f'<input type="hidden" name="next" value="{ssl_tab(site)}">' in form
    response = alice_client.post(reverse("ui:dns-credential-add"),
                                 {**DNS_FORM, "next": ssl_tab(site)})
    assert response["Location"] == ssl_tab(site)
    assert json.loads(site.owner.dns_credentials.get().credentials)["zone"] == "example.com"


@pytest.mark.parametrize("value, expected", [
    ("/sites/3/#certificate", "/sites/3/#certificate"),
    ("/dns-credentials/?a=b", "/dns-credentials/?a=b"),
    ("", ""), (None, ""), ("sites/3/", ""), ("https://evil.example/", ""), ("//evil.example", ""),
    ("/\\evil.example", ""), ("/\t/evil.example", ""), ("/sites/\n", ""),
])
def test_local_path_keeps_only_paths_on_this_panel(value, expected):
    assert local_path(value) == expected
