"""Internationalised names: stored as punycode, shown in Unicode (the punycode beside it where it
helps), found by either spelling."""

import re

import pytest
from django.urls import reverse
from django.utils.translation import gettext_noop
from rest_framework.test import APIClient

from certs.models import AcmeAccount, Certificate, Order
from panel.models import Site

pytestmark = pytest.mark.usefixtures("queued")  # tests/conftest.py

IDN, PUNYCODE = "中文.example.test", "xn--fiq228c.example.test"


def page(client, url, **params):
    return client.get(url, params).content.decode()


@pytest.fixture
def idn_site(alice_client):
    response = alice_client.post(reverse("ui:site-add"), {"domains": f"{IDN}\nplain.example.test"})
    assert response.status_code == 302
    return Site.objects.get()


@pytest.fixture
def idn_certificate(alice, idn_site):
    account = AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/directory",
                                         account_key="unused", account_url="https://ca.test/acct/1")
    return Certificate.objects.create(owner=alice, site=idn_site, account=account,
                                      domains=idn_site.domains)


def test_the_name_is_stored_as_punycode_and_flashed_in_unicode(alice_client, idn_site):
    assert idn_site.domains == [PUNYCODE, "plain.example.test"]
    html = page(alice_client, reverse("ui:site-detail", args=[idn_site.pk]))
    flash = re.search(r'<ul class="messages">(.*?)</ul>', html, re.DOTALL).group(1)
    assert f"Site {IDN} added" in flash and PUNYCODE not in flash


def test_the_site_page_shows_the_name_in_unicode_with_its_punycode(alice_client, idn_site):
    html = page(alice_client, reverse("ui:site-detail", args=[idn_site.pk]))
    assert f"<title>{IDN} · CertPanel</title>" in html
    assert re.search(rf"<h1>{IDN} <small class=\"muted\">{PUNYCODE}</small></h1>", html)
    assert f'<li>{IDN} <span class="muted small">{PUNYCODE}</span></li>' in html
    assert "<li>plain.example.test</li>" in html  # an ASCII name has no second spelling


def test_the_edit_form_gives_back_the_names_as_typed(alice_client, idn_site):
    html = page(alice_client, reverse("ui:site-edit", args=[idn_site.pk]))
    assert f">\n{IDN}\nplain.example.test</textarea>" in html


@pytest.mark.parametrize("query", ["中文", "xn--fiq228c", IDN, PUNYCODE])
def test_the_site_list_shows_unicode_and_finds_either_spelling(alice_client, idn_site, query):
    html = page(alice_client, reverse("ui:site-list"), q=query)
    assert f">{IDN}</a>" in html
    assert f">{IDN}</a>" not in page(alice_client, reverse("ui:site-list"), q="英文")


@pytest.mark.parametrize("query", ["中文", "xn--fiq228c"])
def test_the_certificate_list_shows_unicode_and_finds_either_spelling(alice_client,
                                                                      idn_certificate, query):
    shown = f">{IDN}, plain.example.test</a>"
    assert shown in page(alice_client, reverse("ui:certificate-list"), q=query)
    assert shown not in page(alice_client, reverse("ui:certificate-list"), q="英文")


def test_the_certificate_page_and_the_dashboard_show_unicode(alice_client, idn_certificate):
    html = page(alice_client, reverse("ui:certificate-detail", args=[idn_certificate.pk]))
    assert f"<h1>{IDN}</h1>" in html and f"<title>{IDN} · CertPanel</title>" in html
    assert PUNYCODE not in page(alice_client, reverse("ui:dashboard")).replace(f"{IDN}", "")


def test_the_ssl_tab_offers_the_names_and_the_wildcard_in_unicode(alice_client, alice, idn_site):
    AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/directory",
                               account_key="unused", account_url="https://ca.test/acct/1")
    html = page(alice_client, reverse("ui:site-detail", args=[idn_site.pk]))
    form = re.search(r'<form class="form issue-form".*?</form>', html, re.DOTALL).group(0)
    assert f'value="{PUNYCODE}"' in form  # what is posted stays the stored name
    assert f"{IDN}</label>" in form and f"Also *.{IDN}" in form
    assert not re.search(rf">[^<]*{PUNYCODE}", form), "punycode shown as a label"


def test_the_delete_page_lists_the_certificates_in_unicode(alice_client, idn_certificate):
    html = page(alice_client, reverse("ui:site-delete", args=[idn_certificate.site.pk]))
    assert f">{IDN}, plain.example.test</a>" in html and f">{PUNYCODE}" not in html


def test_a_refusal_names_the_name_as_typed(alice_client, bob_client, idn_site):
    response = bob_client.post(reverse("ui:site-add"), {"domains": IDN})
    assert f"Already used by another site: {IDN}" in response.content.decode()


def test_the_order_log_names_the_name_in_unicode_and_the_api_keeps_punycode(alice_client, alice, idn_certificate):
    order = Order.objects.create(owner=alice, certificate=idn_certificate)
    order.log(gettext_noop("%(name)s: validated"), name=PUNYCODE)
    html = page(alice_client, reverse("ui:site-detail", args=[idn_certificate.site.pk]))
    log = re.search(r'<ol class="log".*?</ol>', html, re.DOTALL).group(0)
    assert f"{IDN}: validated" in log and PUNYCODE not in log
    api = APIClient()
    api.force_authenticate(alice)
    lines = api.get(f"/api/v1/certificates/{idn_certificate.pk}/").json()["order"]["log"]
    assert lines[-1].endswith(f"{PUNYCODE}: validated")  # scripts match what the CA was asked for
