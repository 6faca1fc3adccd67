"""The browser UI of DNS-01: DNS credentials, the issue form's validation methods, and the
TXT records of an order waiting for DNS.

rfc2136 is the provider throughout: it is constructed offline. Nothing reaches Celery or a
name server: certs.orders.enqueue and panel.deployment.dispatch.APPLY_SITE are mocks.
"""

import datetime
import json
import re
from unittest import mock

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from certs import orders
from certs.challenges import dns01
from certs.dns.rfc2136 import Rfc2136Provider
from certs.models import AcmeAccount, Authorization, Certificate, Challenge, DnsCredential, Order
from panel.hosting import sites
from panel.models import Site

SECRET = "c2VjcmV0LXRzaWcta2V5LWZvci10aGUtdWktdGVzdHM="  # base64, as a TSIG secret must be
APEX_VALUE = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
WILDCARD_VALUE = "9ihDbjYfTExAYeDs4DBUeuTo18KBzwvTEjUnSwd32-c"


pytestmark = pytest.mark.usefixtures("queued")  # tests/conftest.py


@pytest.fixture
def site(alice, settings, tmp_path):
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    return sites.save_site(Site(owner=alice, domains=["a.example.com", "www.a.example.com"],
                                root=str(tmp_path / "www" / "a")))


@pytest.fixture
def account(alice):
    return AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/directory", account_key="unused",
                                      account_url="https://ca.test/acct/1", email="alice@example.com")


def make_credential(owner, name="ns1 of example.com", **values):
    fields = {"server": "192.0.2.53", "zone": "example.com", "tsig_key_name": "certpanel-key",
              "tsig_secret": SECRET, **values}
    return DnsCredential.objects.create(owner=owner, provider="rfc2136", name=name, credentials=json.dumps(fields))


@pytest.fixture
def credential(alice):
    return make_credential(alice)


def page_text(response):
    return response.content.decode()


def field_error(html, field):
    """The text of a field's inline error list, or None."""
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.DOTALL)
    return match and match.group(1)


FORM_DATA = {
    "provider": "rfc2136", "name": "Office BIND", "cred_server": "192.0.2.53", "cred_port": "5353",
    "cred_zone": "example.com", "cred_tsig_key_name": "certpanel-key", "cred_tsig_algorithm": "hmac-sha256",
    "cred_tsig_secret": SECRET, "propagation_timeout": "90",
}


# --- DNS credentials


def test_navigation_links_to_dns_credentials(alice_client):
    html = page_text(alice_client.get(reverse("ui:site-list")))
    assert f'href="{reverse("ui:dns-credential-list")}"' in html
    html = page_text(alice_client.get(reverse("ui:dns-credential-list")))
    assert re.search(rf'href="{reverse("ui:dns-credential-list")}" aria-current="page"', html)


@pytest.mark.parametrize("name", ["ui:dns-credential-list", "ui:dns-credential-add"])
def test_credential_pages_redirect_anonymous_users(client, db, name):
    assert client.get(reverse(name))["Location"].startswith(reverse("login"))


def test_adding_starts_with_choosing_a_provider(alice_client):
    html = page_text(alice_client.get(reverse("ui:dns-credential-add")))
    assert re.search(r'<form class="card form" method="get"', html)
    assert re.search(r'<select name="provider"[^>]*>.*<option value="rfc2136">RFC 2136', html, re.DOTALL)
    assert 'name="cred_server"' not in html

    html = page_text(alice_client.get(reverse("ui:dns-credential-add"), {"provider": "no-such-provider"}))
    assert "not one of the available choices" in field_error(html, "provider")
    assert 'name="cred_server"' not in html
    response = alice_client.post(reverse("ui:dns-credential-add"), {**FORM_DATA, "provider": "no-such-provider"})
    assert field_error(page_text(response), "provider") and DnsCredential.objects.count() == 0


def provider_options(html):
    """[(optgroup label, [option values])] of the provider list."""
    select = re.search(r'<select name="provider".*?</select>', html, re.DOTALL).group(0)
    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', select, re.DOTALL)
    return [(label, re.findall(r'<option value="([^"]+)"', options)) for label, options in groups]


def test_in_chinese_the_provider_list_starts_with_chinas_big_clouds(alice_client):
    html = page_text(alice_client.get(reverse("ui:dns-credential-add"),
                                      HTTP_ACCEPT_LANGUAGE="zh-hans"))
    (most_used, featured), (others, rest) = provider_options(html)
    assert (most_used, others) == ("常用", "其他（按字母顺序）")
    # The first is the default.
    assert featured == ["aliyun", "qcloud", "huaweicloud", "cloudflare", "dnspod"]
    assert "route53" in rest and not set(featured) & set(rest)
    assert re.search(r'<option value="aliyun">阿里云', html)


def test_in_english_cloudflare_and_route_53_come_first_then_the_alphabet(alice_client):
    (_most_used, featured), (_others, rest) = provider_options(
        page_text(alice_client.get(reverse("ui:dns-credential-add"))))
    assert featured[:2] == ["cloudflare", "route53"] and "aliyun" in rest
    assert rest.index("aliyun") < rest.index("rfc2136") < rest.index("zonomi")


def test_the_api_lists_the_providers_by_code_whatever_the_language(alice_client):
    codes = [entry["code"] for entry in alice_client.get("/api/v1/dns-providers/",
                                                         HTTP_ACCEPT_LANGUAGE="zh-hans").json()]
    assert codes == sorted(codes)


@pytest.mark.parametrize("provider, helps", [
    ("aliyun", ["RAM 用户的 AccessKey ID", "只在创建 AccessKey 时显示一次"]),
    ("qcloud", ["CAM 用户 API 密钥的 SecretId", "同一 API 密钥的 SecretKey"]),
    ("huaweicloud", ["该用户所属的华为云账号"]),
])
def test_the_chinese_providers_fields_are_explained_in_chinese(alice_client, provider, helps):
    html = page_text(alice_client.get(reverse("ui:dns-credential-add"), {"provider": provider},
                                      HTTP_ACCEPT_LANGUAGE="zh-hans"))
    for text in helps:
        assert text in html
    assert "for authentication" not in html  # lexicon's own English help


def test_the_form_renders_the_providers_declared_fields(alice_client):
    html = page_text(alice_client.get(reverse("ui:dns-credential-add"), {"provider": "rfc2136"}))
    assert '<input type="hidden" name="provider" value="rfc2136"' in html
    for field in Rfc2136Provider.fields:
        assert re.search(rf'<label for="id_cred_{field.name}">{re.escape(str(field.label))}', html), field.name
        assert f'name="cred_{field.name}"' in html
        if field.help:
            assert str(field.help) in html
    # Sensitive fields are password inputs; required ones are marked.
    assert re.search(r'<input type="password" name="cred_tsig_secret"[^>]*required', html)
    assert re.search(r'<input type="text" name="cred_server"[^>]*required', html)
    assert re.search(r'<label for="id_cred_server">Server address <span class="required"', html)
    assert not re.search(r'<label for="id_cred_zone">Zone <span class="required"', html)
    assert re.search(r'name="cred_port" value="53"', html)  # a declared default
    assert 'name="propagation_timeout"' in html and 'name="name"' in html


def test_saving_stores_the_secret_encrypted_and_never_shows_it(alice_client, alice):
    response = alice_client.post(reverse("ui:dns-credential-add"), FORM_DATA)
    credential = DnsCredential.objects.get()
    assert response["Location"] == reverse("ui:dns-credential-detail", args=[credential.pk])
    assert (credential.owner, credential.provider, credential.name, credential.propagation_timeout) == (
        alice, "rfc2136", "Office BIND", 90)
    assert credential.values() == {"server": "192.0.2.53", "port": "5353", "zone": "example.com",
                                   "tsig_key_name": "certpanel-key", "tsig_algorithm": "hmac-sha256",
                                   "tsig_secret": SECRET}
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM certs_dnscredential WHERE id = %s", [credential.pk])
        (raw,) = cursor.fetchone()
    assert raw and SECRET not in raw and "certpanel-key" not in raw and "tsig_secret" not in raw

    detail = page_text(alice_client.get(response["Location"]))
    listing = page_text(alice_client.get(reverse("ui:dns-credential-list")))
    for html in (detail, listing):
        assert "Office BIND" in html and "RFC 2136" in html
        assert SECRET not in html and SECRET[:12] not in html and SECRET[-12:] not in html
    assert "DNS credentials “Office BIND” saved." in detail
    # The detail page says which fields are set, and shows no value at all.
    assert re.search(r"TSIG secret \(base64\):\s*<span class=\"badge badge--valid\">set</span>", detail)
    assert "certpanel-key" not in detail and "192.0.2.53" not in detail
    assert "90 seconds" in detail


def test_errors_are_shown_inline_and_the_secret_is_not_rendered_back(alice_client):
    data = {**FORM_DATA, "name": "", "cred_server": ""}
    html = page_text(alice_client.post(reverse("ui:dns-credential-add"), data))
    assert "required" in field_error(html, "name") and "required" in field_error(html, "cred_server")
    assert SECRET not in html
    assert 'value="certpanel-key"' in html  # what was typed comes back, except secrets

    # The provider's own checks (here: a secret that is not base64) come back at the top of the form.
    html = page_text(alice_client.post(reverse("ui:dns-credential-add"), {**FORM_DATA, "cred_tsig_secret": "not base64!"}))
    assert re.search(r'<div class="alert alert--error" role="alert">.*TSIG secret \(base64\)', html, re.DOTALL)
    assert "not base64!" not in html

    html = page_text(alice_client.post(reverse("ui:dns-credential-add"), {**FORM_DATA, "propagation_timeout": "0"}))
    assert field_error(html, "propagation_timeout")
    assert DnsCredential.objects.count() == 0


def test_the_test_button_flashes_the_providers_answer(alice_client, credential):
    url = reverse("ui:dns-credential-test", args=[credential.pk])
    assert alice_client.get(url).status_code == 405
    with mock.patch.object(Rfc2136Provider, "check") as check:
        response = alice_client.post(url, {"back": "list"}, follow=True)
    check.assert_called_once_with()
    assert response.redirect_chain[-1][0] == reverse("ui:dns-credential-list")
    assert "The provider accepted these credentials." in page_text(response)
    assert "alert--success" in page_text(response)

    # rfc2136 cannot be tested without a zone: an answer found offline.
    no_zone = make_credential(credential.owner, name="no zone", zone="")
    response = alice_client.post(reverse("ui:dns-credential-test", args=[no_zone.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("ui:dns-credential-detail", args=[no_zone.pk])
    html = page_text(response)
    assert "“no zone” did not work: Give the zone to test these credentials against." in html
    assert "alert--error" in html and SECRET not in html


def test_a_foreign_credential_is_404_for_every_action(bob_client, credential):
    with mock.patch.object(Rfc2136Provider, "check") as check:
        assert bob_client.post(reverse("ui:dns-credential-test", args=[credential.pk])).status_code == 404
    check.assert_not_called()
    for name in ("ui:dns-credential-detail", "ui:dns-credential-delete"):
        assert bob_client.get(reverse(name, args=[credential.pk])).status_code == 404
    assert bob_client.post(reverse("ui:dns-credential-delete", args=[credential.pk])).status_code == 404
    assert DnsCredential.objects.filter(pk=credential.pk).exists()
    assert "ns1 of example.com" not in page_text(bob_client.get(reverse("ui:dns-credential-list")))


def test_delete_asks_first_and_is_refused_while_certificates_use_it(alice_client, alice, credential, account):
    url = reverse("ui:dns-credential-delete", args=[credential.pk])
    certificate = Certificate.objects.create(owner=alice, account=account, domains=["a.example.com"],
                                             challenge="dns-01", dns_credential=credential)
    html = page_text(alice_client.get(url))
    assert "cannot be deleted: 1 certificate uses it" in html and 'method="post"' not in html.split("<main", 1)[1]
    response = alice_client.post(url, follow=True)
    assert "cannot be deleted: 1 certificate uses it" in page_text(response)
    assert DnsCredential.objects.filter(pk=credential.pk).exists()
    listing = page_text(alice_client.get(reverse("ui:dns-credential-list")))
    assert re.search(r"ns1 of example.com</a></td>\s*<td>RFC 2136[^<]*</td>\s*<td>1</td>", listing)

    certificate.delete()
    html = page_text(alice_client.get(url))
    assert re.search(r'<form method="post" class="actions">.*button--danger', html, re.DOTALL)
    response = alice_client.post(url)
    assert response["Location"] == reverse("ui:dns-credential-list")
    assert not DnsCredential.objects.exists()


# --- issuing with DNS-01


def issue(client, site, **data):
    return client.post(reverse("ui:certificate-issue", args=[site.pk]), {"key_type": "ec256", **data})


def test_the_issue_form_offers_the_methods_own_credentials_and_the_wildcard(alice_client, alice, bob, site,
                                                                            account, credential):
    make_credential(bob, name="bob's provider")
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    for value in ("http-01", "dns-01", "dns-01-manual"):
        assert re.search(rf'<input type="radio" name="challenge" value="{value}"', html)
    assert re.search(r'<input type="radio" name="challenge" value="http-01"[^>]*checked', html)
    assert re.search(rf'<option value="{credential.pk}" selected>ns1 of example.com · RFC 2136', html)
    assert "bob&#x27;s provider" not in html and "bob's provider" not in html
    assert re.search(r'<input type="checkbox" name="include_wildcard"', html) and "Also *.a.example.com" in html
    assert 'name="challenge_alias"' in html


def test_dns01_needs_credentials_of_ones_own(alice_client, bob, site, account):
    response = issue(alice_client, site, account=account.pk, challenge="dns-01", domains=["a.example.com"])
    assert "needs DNS credentials" in field_error(page_text(response), "dns_credential")
    foreign = make_credential(bob)
    response = issue(alice_client, site, account=account.pk, challenge="dns-01", domains=["a.example.com"],
                     dns_credential=foreign.pk)
    assert "not one of the available choices" in field_error(page_text(response), "dns_credential")
    assert Certificate.objects.count() == 0 and Order.objects.count() == 0


def test_a_bad_challenge_alias_is_shown_on_its_field(alice_client, site, account, credential):
    response = issue(alice_client, site, account=account.pk, challenge="dns-01", domains=["a.example.com"],
                     dns_credential=credential.pk, challenge_alias="not a name!")
    assert field_error(page_text(response), "challenge_alias")
    assert Certificate.objects.count() == 0


def test_a_wildcard_is_refused_with_http01(alice_client, site, account):
    response = issue(alice_client, site, account=account.pk, challenge="http-01", domains=["a.example.com"],
                     include_wildcard="on")
    error = field_error(page_text(response), "include_wildcard")
    assert "can only be validated with DNS-01" in error
    assert Certificate.objects.count() == 0


def test_a_wildcard_is_accepted_with_dns01(alice_client, alice, site, account, credential, queued,
                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = issue(alice_client, site, account=account.pk, challenge="dns-01", include_wildcard="on",
                         domains=["a.example.com", "www.a.example.com"], dns_credential=credential.pk,
                         challenge_alias="acme.example.net")
    assert response["Location"] == reverse("ui:site-detail", args=[site.pk]) + "#certificate"
    certificate = Certificate.objects.get()
    assert certificate.domains == ["a.example.com", "*.a.example.com", "www.a.example.com"]
    assert (certificate.challenge, certificate.dns_credential, certificate.challenge_alias) == (
        "dns-01", credential, "acme.example.net")
    order = Order.objects.get()
    queued.enqueue.assert_called_once_with(order.pk, order.wakeup, 0)


def test_manual_dns01_needs_no_credentials_and_ignores_the_hidden_fields(alice_client, site, account, credential):
    response = issue(alice_client, site, account=account.pk, challenge="dns-01-manual", include_wildcard="on",
                     domains=["a.example.com"], dns_credential=credential.pk, challenge_alias="acme.example.net")
    assert response.status_code == 302
    certificate = Certificate.objects.get()
    assert certificate.domains == ["a.example.com", "*.a.example.com"]
    assert (certificate.challenge, certificate.dns_credential, certificate.challenge_alias) == (
        "dns-01-manual", None, "")


# --- an order waiting for DNS


def waiting_order(site, account, status=Order.Status.AWAITING_USER, credential=None):
    challenge = "dns-01" if credential else "dns-01-manual"
    certificate = Certificate.objects.create(owner=site.owner, site=site, account=account, challenge=challenge,
                                             dns_credential=credential,
                                             domains=["a.example.com", "*.a.example.com"])
    expires = timezone.now() + datetime.timedelta(days=7)
    order = Order.objects.create(owner=site.owner, certificate=certificate, status=status,
                                 propagation_deadline=timezone.now() + datetime.timedelta(minutes=5))
    for wildcard, value, expiry in ((False, APEX_VALUE, expires), (True, WILDCARD_VALUE, expires
                                                                   - datetime.timedelta(hours=1))):
        authz = Authorization.objects.create(order=order, url=f"https://ca.test/authz/{int(wildcard)}",
                                             identifier="a.example.com", wildcard=wildcard, expires_at=expiry)
        Challenge.objects.create(authorization=authz, type="dns-01", url=f"https://ca.test/chall/{int(wildcard)}",
                                 token=f"token-{int(wildcard)}", record_name="_acme-challenge.a.example.com",
                                 record_value=value)
    order.log("Add these TXT records (the order continues once they are visible)")
    return order


def test_the_fragment_of_an_order_awaiting_the_user_lists_every_value_under_one_name(alice_client, site, account):
    order = waiting_order(site, account)
    url = reverse("ui:order-status", args=[order.pk])
    html = page_text(alice_client.get(url))
    assert re.search(rf'hx-get="{url}" hx-trigger="every \d+s" hx-swap="outerHTML"', html)
    assert "Waiting for you" in html
    rows = re.findall(r"<tr>.*?</tr>", html.split("<tbody>", 1)[1], re.DOTALL)
    assert len(rows) == 1  # one name, two values
    assert 'value="_acme-challenge.a.example.com"' in rows[0]
    assert rows[0].index(APEX_VALUE) < rows[0].index(WILDCARD_VALUE)
    for text in ("_acme-challenge.a.example.com", APEX_VALUE, WILDCARD_VALUE):
        assert f'data-copy="{text}"' in html and f'value="{text}"' in html
    expiry = order.authorizations.get(wildcard=True).expires_at
    assert f'{expiry:%Y-%m-%d %H:%M} UTC' in html  # the first authorization to expire
    assert re.search(rf'<form method="post" action="{reverse("ui:order-continue", args=[order.pk])}">\s*'
                     r'<input type="hidden" name="csrfmiddlewaretoken"[^>]*>\s*'
                     r'<button type="submit" class="button button--primary">Continue</button>', html)
    assert "<script" not in html  # copy buttons are bound by static/js/copy.js
    page = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert APEX_VALUE in page and WILDCARD_VALUE in page
    assert re.search(r'<script src="/static/js/copy.js" defer></script>', page)


def test_the_records_show_the_host_record_relative_to_the_zone(alice_client, site, account):
    # Aliyun's and DNSPod's consoles ask for 主机记录, the name without the zone.
    order = waiting_order(site, account)
    html = page_text(alice_client.get(reverse("ui:order-status", args=[order.pk]),
                                      HTTP_ACCEPT_LANGUAGE="zh-hans"))
    header = re.findall(r"<th[^>]*>(.*?)</th>", html)
    assert header[:2] == ["名称", "主机记录"]
    row = re.findall(r"<tr>.*?</tr>", html.split("<tbody>", 1)[1], re.DOTALL)[0]
    assert re.search(r'value="_acme-challenge.a"\s+aria-label="主机记录"', row)
    assert 'data-copy="_acme-challenge.a"' in row


def test_the_api_gives_the_host_record_too(alice_client, site, account):
    order = waiting_order(site, account)
    answer = alice_client.get(f"/api/v1/certificates/{order.certificate_id}/").json()
    records = {(r["name"], r["host"]) for r in answer["order"]["dns_records"]}
    assert records == {("_acme-challenge.a.example.com", "_acme-challenge.a")}


@pytest.mark.parametrize("name, host", [
    ("_acme-challenge.wild.example.test", "_acme-challenge.wild"),
    ("_acme-challenge.example.test", "_acme-challenge"),
    ("_acme-challenge.shop.example.co.uk", "_acme-challenge.shop"),
])
def test_the_host_record_is_relative_to_the_registrable_domain(name, host):
    assert dns01.host_record(name) == host


def test_the_fragment_of_a_propagating_order_waits_for_dns(alice_client, site, account, credential):
    order = waiting_order(site, account, status=Order.Status.PROPAGATING, credential=credential)
    html = page_text(alice_client.get(reverse("ui:order-status", args=[order.pk])))
    assert "hx-trigger=" in html
    assert html.count("Waiting for DNS") >= 2  # the badge and the heading
    assert APEX_VALUE in html and WILDCARD_VALUE in html
    assert f"{order.propagation_deadline:%Y-%m-%d %H:%M:%S} UTC" in html


def test_the_records_leave_the_fragment_once_the_order_moves_on(alice_client, site, account):
    order = waiting_order(site, account)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.VALIDATING)
    html = page_text(alice_client.get(reverse("ui:order-status", args=[order.pk])))
    assert APEX_VALUE not in html and "order-continue" not in html and 'hx-trigger="every 1s"' in html


def test_continue_continues_the_order(alice_client, site, account, queued, django_capture_on_commit_callbacks):
    order = waiting_order(site, account)
    url = reverse("ui:order-continue", args=[order.pk])
    assert alice_client.get(url).status_code == 405
    with mock.patch("certs.orders.continue_order", wraps=orders.continue_order) as continue_order, \
            django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(url)
    continue_order.assert_called_once()
    assert continue_order.call_args.args[0].pk == order.pk
    assert response["Location"] == reverse("ui:site-detail", args=[site.pk]) + "#certificate"
    order.refresh_from_db()
    assert order.user_continued is True
    queued.enqueue.assert_called_once_with(order.pk, order.wakeup, 0)
    assert "The CA is asked to check the TXT records now." in page_text(alice_client.get(response["Location"]))

    Order.objects.filter(pk=order.pk).update(status=Order.Status.VALIDATING)
    response = alice_client.post(url, follow=True)
    assert "no longer waiting for DNS records" in page_text(response)


def test_continue_is_404_for_another_user(bob_client, site, account, queued):
    order = waiting_order(site, account)
    assert bob_client.post(reverse("ui:order-continue", args=[order.pk])).status_code == 404
    assert bob_client.get(reverse("ui:order-status", args=[order.pk])).status_code == 404
    order.refresh_from_db()
    assert order.user_continued is False
    queued.enqueue.assert_not_called()
