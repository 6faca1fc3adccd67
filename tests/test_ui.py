"""The browser UI: pages, forms and the polled order fragment, for an owner and an outsider.

Nothing reaches Celery: the two places where work is queued (certs.orders.enqueue and
panel.deployment.dispatch.APPLY_SITE, called by panel.hosting.sites on commit) are replaced by mocks.
"""

import datetime
import re
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from certs.acme import AcmeError
from certs.models import AcmeAccount, Certificate, CertificateVersion, KeyType, Order
from panel.hosting import sites
from panel.models import PanelSettings, Site

pytestmark = pytest.mark.usefixtures("queued")  # tests/conftest.py


@pytest.fixture
def www_root(settings, tmp_path):
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    return tmp_path / "www"


def make_site(owner, domains, root):
    return sites.save_site(Site(owner=owner, domains=domains, root=str(root)))


def make_account(owner, **fields):
    return AcmeAccount.objects.create(owner=owner, directory_url="https://ca.test/directory",
                                      account_key="unused", account_url=f"https://ca.test/acct/{owner.pk}",
                                      **fields)


@pytest.fixture
def site(alice, www_root):
    return make_site(alice, ["a.example.com", "www.a.example.com"], www_root / "a")


@pytest.fixture
def account(alice):
    return make_account(alice, email="alice@example.com")


def running_order(site, account, status=Order.Status.VALIDATING):
    certificate = Certificate.objects.create(owner=site.owner, site=site, account=account, domains=site.domains)
    order = Order.objects.create(owner=site.owner, certificate=certificate, status=status)
    order.log("Order created at the CA: https://ca.test/order/1")
    order.log("a.example.com: answered http-01")
    return order


def finish(order, days_left=60):
    now = timezone.now()
    version = CertificateVersion.objects.create(
        certificate=order.certificate, order=order, cert_pem="-", chain_pem="-", private_key="-",
        serial="fa11ed5e7a1", issuer="CN=Test Intermediate", not_before=now - datetime.timedelta(days=1),
        not_after=now + datetime.timedelta(days=days_left, hours=1),
    )
    Certificate.objects.filter(pk=order.certificate_id).update(current_version=version,
                                                               status=Certificate.Status.VALID)
    order.status, order.finished_at = Order.Status.VALID, now
    order.save()
    order.log("Certificate issued: serial fa11ed5e7a1")
    return version


def page_text(response):
    return response.content.decode()


# --- frame


PAGES = ["ui:site-list", "ui:site-add", "ui:certificate-list", "ui:account-list", "ui:account-add"]


@pytest.mark.parametrize("name", PAGES)
def test_pages_redirect_anonymous_users_to_login(client, db, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_object_urls_redirect_anonymous_users_and_change_nothing(client, site, account):
    order = running_order(site, account)
    for url in (reverse("ui:site-detail", args=[site.pk]), reverse("ui:order-status", args=[order.pk])):
        assert client.get(url)["Location"].startswith(reverse("login"))
    response = client.post(reverse("ui:certificate-issue", args=[site.pk]),
                           {"account": account.pk, "key_type": "ec256", "domains": ["a.example.com"]})
    assert response["Location"].startswith(reverse("login"))
    assert Certificate.objects.count() == 1 and Order.objects.count() == 1


def test_login_lands_on_the_sites_page(client, alice):
    page = client.get(reverse("login"))
    assert page.status_code == 200 and 'name="password"' in page_text(page)
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-alice-123", "next": "/sites/"})
    assert response["Location"] == reverse("ui:site-list")
    assert client.get(reverse("ui:site-list")).status_code == 200


def test_login_shows_bad_credentials_inline(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "alert--error" in page_text(response)


def test_frame_has_navigation_language_switch_logout_and_no_inline_script(alice_client):
    html = page_text(alice_client.get(reverse("ui:site-list")))
    for name in ("ui:site-list", "ui:certificate-list", "ui:account-list"):
        assert f'href="{reverse(name)}"' in html
    assert 'action="/i18n/setlang/"' in html
    assert 'value="zh-hans"' in html and "简体中文" in html
    assert 'action="/logout/"' in html
    assert re.search(r'<body hx-headers=\'\{"X-CSRFToken": "[A-Za-z0-9]+"\}\'>', html)
    # A future Content-Security-Policy forbids inline script: every <script> has a src.
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all("src=" in tag for tag in scripts)
    assert "/static/vendor/htmx.min.js" in html


def test_language_switch_and_logout(alice_client):
    response = alice_client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/sites/"})
    assert response.status_code == 302 and response.cookies["django_language"].value == "zh-hans"
    assert alice_client.post("/logout/")["Location"] == reverse("login")
    assert alice_client.get(reverse("ui:site-list")).status_code == 302


# --- sites


def test_it_shows_bad_site_input_inline_and_stores_nothing(alice_client, www_root, queued):
    response = alice_client.post(reverse("ui:site-add"), {"domains": "good.example.com\nexa_mple.com",
                                                          "root": "/etc/nginx"})
    assert response.status_code == 200
    html = page_text(response)
    assert re.search(r'id="id_domains_error"[^>]*>.*exa_mple\.com', html, re.S)
    assert re.search(r'id="id_root_error"[^>]*>.*must be inside one of the allowed directories', html, re.S)
    assert "good.example.com\nexa_mple.com" in html  # what was typed comes back for correction
    assert Site.objects.count() == 0
    queued.apply_site.delay.assert_not_called()


def test_it_asks_for_root_or_upstream_not_both(alice_client, www_root):
    response = alice_client.post(reverse("ui:site-add"), {"domains": "a.example.com", "root": str(www_root / "a"),
                                                          "proxy_pass": "http://127.0.0.1:3000"})
    assert re.search(r'id="id_root_error"[^>]*>.*not both', page_text(response), re.S)
    assert Site.objects.count() == 0


def test_it_refuses_a_name_another_site_has(alice_client, bob, www_root):
    make_site(bob, ["taken.example.com"], www_root / "b")
    response = alice_client.post(reverse("ui:site-add"), {"domains": "taken.example.com", "root": str(www_root / "a")})
    assert "Already used by another site: taken.example.com" in page_text(response)
    assert Site.objects.count() == 1


def test_a_valid_site_is_stored_applied_and_listed(alice_client, alice, www_root, queued,
                                                    django_capture_on_commit_callbacks):
    # A user's upstream on loopback needs the administrator's allow-list (tests/test_outbound.py).
    PanelSettings.objects.create(pk=1, outbound_allow_list="127.0.0.1:3000")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("ui:site-add"), {
            "domains": "A.example.com, www.a.example.com  b.example.com，c.example.com",
            "proxy_pass": "http://127.0.0.1:3000", "force_https": "on", "http2": "on",
        })
    site = Site.objects.get()
    assert response["Location"] == reverse("ui:site-detail", args=[site.pk])
    assert site.owner == alice
    assert site.domains == ["a.example.com", "www.a.example.com", "b.example.com", "c.example.com"]
    assert (site.proxy_pass, site.root, site.force_https, site.hsts, site.http2) == (
        "http://127.0.0.1:3000", "", True, False, True)
    queued.apply_site.delay.assert_called_once_with(site.pk)

    html = page_text(alice_client.get(reverse("ui:site-list")))
    assert f'href="{reverse("ui:site-detail", args=[site.pk])}">a.example.com</a>' in html
    assert "Reverse proxy" in html and "badge--pending" in html


def test_site_page_shows_nginx_error(alice_client, site):
    Site.objects.filter(pk=site.pk).update(config_status=Site.ConfigStatus.FAILED,
                                           config_error='nginx: [emerg] unknown directive "bogus"')
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert "Rejected by nginx" in html
    assert "nginx: [emerg] unknown directive &quot;bogus&quot;" in html


def test_site_list_searches_by_domain_and_shows_only_own_sites(alice_client, alice, bob, www_root):
    make_site(alice, ["shop.example.com"], www_root / "shop")
    make_site(alice, ["blog.example.com", "www.blog.example.com"], www_root / "blog")
    make_site(bob, ["bob-shop.example.com"], www_root / "bob")
    html = page_text(alice_client.get(reverse("ui:site-list")))
    assert "shop.example.com" in html and "blog.example.com" in html and "bob-shop" not in html

    html = page_text(alice_client.get(reverse("ui:site-list"), {"q": "shop"}))
    assert "shop.example.com" in html and "blog.example.com" not in html and "bob-shop" not in html
    html = page_text(alice_client.get(reverse("ui:site-list"), {"q": "www.blog"}))
    assert "blog.example.com" in html and "shop.example.com" not in html


def test_site_list_pages_by_fifty(alice_client, alice):
    Site.objects.bulk_create(
        [Site(owner=alice, domains=[f"s{i:03}.example.com"], primary_domain=f"s{i:03}.example.com", root="/srv/www/x")
         for i in range(51)]
    )
    first = alice_client.get(reverse("ui:site-list"))
    assert len(first.context["page"].object_list) == 50
    assert "s049.example.com" in page_text(first) and "s050.example.com" not in page_text(first)
    second = alice_client.get(reverse("ui:site-list"), {"page": 2})
    assert [s.primary_domain for s in second.context["page"]] == ["s050.example.com"]


def test_site_list_shows_certificate_status(alice_client, site, account):
    finish(running_order(site, account), days_left=42)
    html = page_text(alice_client.get(reverse("ui:site-list")))
    assert "badge--valid" in html and "42 days left" in html


# --- isolation


def test_an_outsider_gets_404_for_everything_of_alice(bob_client, bob, site, account):
    order = running_order(site, account)
    make_account(bob)
    assert bob_client.get(reverse("ui:site-detail", args=[site.pk])).status_code == 404
    assert bob_client.get(reverse("ui:order-status", args=[order.pk])).status_code == 404
    response = bob_client.post(reverse("ui:certificate-issue", args=[site.pk]),
                               {"account": account.pk, "key_type": "ec256", "domains": ["a.example.com"]})
    assert response.status_code == 404
    assert bob_client.post(reverse("ui:certificate-renew", args=[order.certificate_id])).status_code == 404
    assert Certificate.objects.count() == 1 and Order.objects.count() == 1
    for name in ("ui:site-list", "ui:certificate-list", "ui:account-list"):
        html = page_text(bob_client.get(reverse(name)))
        assert "a.example.com" not in html and "alice@example.com" not in html


# --- the order fragment


def test_order_fragment_polls_while_the_order_runs(alice_client, site, account):
    order = running_order(site, account)
    url = reverse("ui:order-status", args=[order.pk])
    answer = alice_client.get(url)
    assert "HX-Trigger" not in answer  # nothing to reload while the order runs
    html = page_text(answer)
    assert "Order created at the CA: https://ca.test/order/1" in html
    assert "a.example.com: answered http-01" in html
    assert f'hx-get="{url}" hx-trigger="every 1s" hx-swap="outerHTML"' in html
    assert "CA is validating" in html
    assert "<html" not in html  # a fragment, not a page
    # The site page embeds the same polling card.
    assert 'hx-trigger="every 1s"' in page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))


def test_order_fragment_stops_polling_when_valid_and_shows_the_certificate(alice_client, site, account):
    order = running_order(site, account)
    finish(order, days_left=89)
    answer = alice_client.get(reverse("ui:order-status", args=[order.pk]))
    assert answer["HX-Trigger"] == "order-finished"  # the site page reloads its version history
    html = page_text(answer)
    assert "hx-trigger" not in html and "hx-get" not in html
    assert "Certificate issued: serial fa11ed5e7a1" in html
    for text in ("fa11ed5e7a1", "CN=Test Intermediate", "www.a.example.com", "89 days left", "Renew now"):
        assert text in html
    assert f'action="{reverse("ui:certificate-renew", args=[order.certificate_id])}"' in html


def test_order_fragment_stops_polling_when_invalid_and_shows_the_error(alice_client, site, account):
    order = running_order(site, account)
    order.status, order.error = Order.Status.INVALID, "a.example.com: unauthorized: 404 for the token"
    order.save()
    html = page_text(alice_client.get(reverse("ui:order-status", args=[order.pk])))
    assert "hx-trigger" not in html
    assert "a.example.com: unauthorized: 404 for the token" in html and "Try again" in html


# --- issuing and renewing


def test_site_page_offers_the_issue_form_prefilled(alice_client, alice, www_root, account):
    site = make_site(alice, ["a.example.com", "*.a.example.com"], www_root / "a")
    make_account(get_user_model().objects.create_user("carol"), email="carol@example.com")
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert re.search(r'<input type="checkbox" name="domains" value="a.example.com"[^>]*checked', html)
    assert not re.search(r'<input type="checkbox" name="domains" value="\*.a.example.com"[^>]*checked', html)
    assert "alice@example.com" in html and "carol@example.com" not in html
    assert 'value="rsa4096"' in html and "HTTP-01" in html


def test_site_page_without_accounts_links_to_adding_one(alice_client, site):
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert f'href="{reverse("ui:account-add")}?next=' in html and 'name="key_type"' not in html


def test_issuing_creates_the_certificate_and_starts_its_order(alice_client, alice, site, account, queued,
                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("ui:certificate-issue", args=[site.pk]), {
            "account": account.pk, "key_type": KeyType.RSA3072, "domains": ["www.a.example.com"],
        })
    assert response["Location"] == reverse("ui:site-detail", args=[site.pk]) + "#certificate"
    certificate = Certificate.objects.get()
    assert (certificate.owner, certificate.site, certificate.account) == (alice, site, account)
    assert certificate.key_type == KeyType.RSA3072 and certificate.domains == ["www.a.example.com"]
    assert certificate.challenge == "http-01"
    order = Order.objects.get()
    queued.enqueue.assert_called_once_with(order.pk, order.wakeup, 0)

    html = page_text(alice_client.get(response["Location"]))
    assert f'hx-get="{reverse("ui:order-status", args=[order.pk])}"' in html
    assert "Order requested for www.a.example.com (RSA 3072)" in html


def test_issuing_refuses_a_foreign_account_wildcards_and_no_names(alice_client, bob, www_root, alice):
    site = make_site(alice, ["a.example.com", "*.a.example.com"], www_root / "a")
    foreign, own = make_account(bob), make_account(alice)
    url = reverse("ui:certificate-issue", args=[site.pk])
    response = alice_client.post(url, {"account": foreign.pk, "key_type": "ec256", "domains": ["a.example.com"]})
    assert re.search(r'id="id_account_error"[^>]*>.*not one of the available choices', page_text(response), re.S)
    response = alice_client.post(url, {"account": own.pk, "key_type": "ec256", "domains": ["*.a.example.com"]})
    assert "Wildcard names can only be validated with DNS-01." in page_text(response)
    response = alice_client.post(url, {"account": own.pk, "key_type": "ec256"})
    assert re.search(r'id="id_domains_error"', page_text(response))
    response = alice_client.post(url, {"account": own.pk, "key_type": "ec256", "domains": ["other.example.com"]})
    assert re.search(r'id="id_domains_error"', page_text(response))
    assert Certificate.objects.count() == 0 and Order.objects.count() == 0


def test_renew_starts_a_new_order_unless_one_is_running(alice_client, site, account):
    order = running_order(site, account)
    url = reverse("ui:certificate-renew", args=[order.certificate_id])
    response = alice_client.post(url, follow=True)
    assert "already running" in page_text(response)
    assert Order.objects.count() == 1
    finish(order)
    response = alice_client.post(url)
    assert response["Location"] == reverse("ui:site-detail", args=[site.pk]) + "#certificate"
    assert Order.objects.count() == 2 and order.certificate.latest_order().status == Order.Status.NEW
    assert alice_client.get(url).status_code == 405


# --- certificates and accounts


def test_certificate_list_shows_names_status_days_left_and_site(alice_client, site, account):
    finish(running_order(site, account), days_left=30)
    html = page_text(alice_client.get(reverse("ui:certificate-list")))
    assert "a.example.com, www.a.example.com" in html
    assert "badge--valid" in html and ">30<" in html
    assert f'href="{reverse("ui:site-detail", args=[site.pk])}#certificate"' in html


class FakeCA:
    def __init__(self, error=None):
        self.error, self.registered = error, []

    def register(self, email, eab_kid, eab_hmac_key):
        if self.error:
            raise self.error
        self.registered.append((email, eab_kid, eab_hmac_key))
        return "https://ca.test/acct/42"


def test_account_registration_shows_the_ca_error_and_never_the_hmac_key(alice_client):
    ca = FakeCA(AcmeError("urn:ietf:params:acme:error:unauthorized: the EAB key id is unknown"))
    with mock.patch("certs.accounts.new_client", return_value=ca):
        response = alice_client.post(reverse("ui:account-add"), {
            "ca": "zerossl", "email": "alice@example.com", "eab_kid": "kid-1", "eab_hmac_key": "c2VjcmV0LWhtYWMta2V5LXZhbHVl",
        })
    html = page_text(response)
    assert response.status_code == 200
    assert "The account was not registered. The CA refused the request." in html
    assert ("urn:ietf:params:acme:error:unauthorized: the EAB key id is unknown</pre></details>"
            in html)  # the CA's words, in the fold-out
    assert "c2VjcmV0LWhtYWMta2V5LXZhbHVl" not in html
    assert 'value="kid-1"' in html
    assert AcmeAccount.objects.count() == 0


def test_account_registration_stores_the_account_and_lists_it(alice_client, alice):
    ca = FakeCA()
    with mock.patch("certs.accounts.new_client", return_value=ca) as new_client:
        response = alice_client.post(reverse("ui:account-add"), {
            "ca": "google-staging", "email": "alice@example.com", "eab_kid": "kid-1", "eab_hmac_key": "c2VjcmV0LWhtYWMta2V5LXZhbHVl",
        })
    assert response["Location"] == reverse("ui:account-list")
    assert new_client.call_args.args[0] == "https://dv.acme-v02.test-api.pki.goog/directory"
    assert ca.registered == [("alice@example.com", "kid-1", "c2VjcmV0LWhtYWMta2V5LXZhbHVl")]
    account = AcmeAccount.objects.get()
    assert (account.owner, account.account_url, account.eab_hmac_key) == (alice, "https://ca.test/acct/42",
                                                                          "c2VjcmV0LWhtYWMta2V5LXZhbHVl")
    html = page_text(alice_client.get(reverse("ui:account-list")))
    assert "Google Trust Services (staging)" in html and "alice@example.com" in html and "kid-1" in html
    assert "c2VjcmV0LWhtYWMta2V5LXZhbHVl" not in html


@pytest.mark.parametrize("data, field, message", [
    ({"ca": "zerossl"}, "eab_kid", "requires External Account Binding"),
    ({"ca": "letsencrypt", "eab_kid": "kid-1"}, "eab_hmac_key", "needs both the key id and the HMAC key"),
    ({"ca": "custom"}, "directory_url", "directory"),
    ({"ca": "custom", "directory_url": "not a url"}, "directory_url", "valid URL"),
    ({"ca": "letsencrypt", "email": "nope"}, "email", "valid email"),
])
def test_account_form_checks_input_before_calling_the_ca(admin_client, data, field, message):
    with mock.patch("certs.accounts.new_client") as new_client:
        response = admin_client.post(reverse("ui:account-add"), data)
    assert re.search(rf'id="id_{field}_error"[^>]*>.*{message}', page_text(response), re.S)
    new_client.assert_not_called()


def test_a_custom_directory_url_is_used_as_given(admin_client):
    """Admins only: tests/test_roles.py shows a user cannot."""
    ca = FakeCA()
    with mock.patch("certs.accounts.new_client", return_value=ca) as new_client:
        admin_client.post(reverse("ui:account-add"), {"ca": "custom", "directory_url": "https://pebble.test:14000/dir"})
    assert new_client.call_args.args[0] == "https://pebble.test:14000/dir"
    assert AcmeAccount.objects.get().directory_url == "https://pebble.test:14000/dir"
