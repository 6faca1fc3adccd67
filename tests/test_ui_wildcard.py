"""Wildcards by a tick: on a site's SSL tab, "Also *.<domain>" adds the name to the site (checked
as the site's own edit checks names) and issues with the chosen DNS-01 method; a site whose
method is DNS-01 starts with its wildcard names ticked; HTTP-01 says why it cannot.

Nothing reaches Celery (tests/conftest.py's `queued`)."""

import re

import pytest
from django.urls import reverse

from certs.models import AcmeAccount, Certificate, Order
from panel.hosting import sites
from panel.models import Site, SiteDomain, UserQuota
from panel.security import homes
from tests.test_versions import make_certificate

pytestmark = pytest.mark.usefixtures("queued")


@pytest.fixture
def site(alice):
    return sites.save_site(Site(owner=alice, domains=["wild.example.test"],
                                root=homes.default_document_root(alice, "wild.example.test")))


@pytest.fixture
def account(alice):
    return AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/directory",
                                      account_key="unused", account_url="https://ca.test/acct/1")


def issue(client, site, **data):
    return client.post(reverse("ui:certificate-issue", args=[site.pk]),
                       {"key_type": "ec256", **data})


def page_text(response):
    return response.content.decode()


def field_error(html, field):
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.DOTALL)
    return match and match.group(1)


def ticked(html, name):
    box = rf'<input type="checkbox" name="domains" value="{re.escape(name)}"[^>]*checked'
    return re.search(box, html)


def test_the_tick_adds_the_wildcard_to_the_site_and_issues_with_dns01(
        alice_client, site, account, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = issue(alice_client, site, account=account.pk, challenge="dns-01-manual",
                         domains=["wild.example.test"], include_wildcard="on")
    assert response["Location"] == reverse("ui:site-detail", args=[site.pk]) + "#certificate"
    site.refresh_from_db()
    assert site.domains == ["wild.example.test", "*.wild.example.test"]
    indexed = SiteDomain.objects.filter(site=site).values_list("name", flat=True)
    assert set(indexed) == set(site.domains)
    queued.apply_site.delay.assert_called()  # nginx now serves the wildcard too
    certificate = Certificate.objects.get()
    assert certificate.domains == ["wild.example.test", "*.wild.example.test"]
    assert certificate.challenge == "dns-01-manual"
    order = Order.objects.get()
    queued.enqueue.assert_called_once_with(order.pk, order.wakeup, 0)


def test_http01_says_the_wildcard_needs_dns01_and_changes_nothing(alice_client, site, account):
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert "Also *.wild.example.test" in html and "Wildcard names need DNS-01" in html
    response = issue(alice_client, site, account=account.pk, challenge="http-01",
                     domains=["wild.example.test"], include_wildcard="on")
    assert "choose one of the DNS-01 methods to include *.wild.example.test" in field_error(
        page_text(response), "include_wildcard")
    site.refresh_from_db()
    assert site.domains == ["wild.example.test"] and not Certificate.objects.exists()


def test_a_wildcard_another_site_has_is_refused_on_the_tick(alice_client, alice, site, account):
    sites.save_site(Site(owner=alice, domains=["*.wild.example.test"],
                         root=homes.default_document_root(alice, "*.wild.example.test")))
    response = issue(alice_client, site, account=account.pk, challenge="dns-01-manual",
                     domains=["wild.example.test"], include_wildcard="on")
    assert "Already used by another site: *.wild.example.test" in field_error(page_text(response),
                                                                               "include_wildcard")
    site.refresh_from_db()
    assert site.domains == ["wild.example.test"] and not Certificate.objects.exists()


def test_a_refused_certificate_leaves_the_site_as_it_was(alice_client, alice, site, account):
    UserQuota.objects.create(user=alice, max_certificates=0)
    response = issue(alice_client, site, account=account.pk, challenge="dns-01-manual",
                     domains=["wild.example.test"], include_wildcard="on")
    assert response.status_code == 200 and "alert--error" in page_text(response)
    site.refresh_from_db()
    assert site.domains == ["wild.example.test"]
    assert not SiteDomain.objects.filter(name="*.wild.example.test").exists()
    # The overview lists the site's names.
    assert "*.wild.example.test</li>" not in page_text(response)


def test_a_dns01_site_starts_with_its_wildcards_ticked(alice_client, alice, site, account):
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert re.search(r'<input type="radio" name="challenge" value="http-01"[^>]*checked', html)
    sites.add_names(site, ["*.wild.example.test"], alice)
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    # An HTTP-01 site so far.
    assert ticked(html, "wild.example.test") and not ticked(html, "*.wild.example.test")

    Certificate.objects.create(owner=alice, site=site, account=account, challenge="dns-01-manual",
                               domains=["wild.example.test", "*.wild.example.test"])
    html = page_text(alice_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert ticked(html, "wild.example.test") and ticked(html, "*.wild.example.test")
    assert re.search(r'<input type="radio" name="challenge" value="dns-01-manual"[^>]*checked',
                     html)


def test_while_a_new_certificate_is_ordered_the_page_says_the_earlier_one_still_serves(alice_client, alice):
    site = Site.objects.create(owner=alice, domains=["wild.example.test"], root="/unused")
    earlier = make_certificate(alice, ["wild.example.test"], site=site)
    url = reverse("ui:site-detail", args=[site.pk])
    assert "goes on serving" not in alice_client.get(url).content.decode()  # the one shown serves

    make_certificate(alice, ["wild.example.test", "*.wild.example.test"], site=site, days_left=None)
    html = alice_client.get(url).content.decode()
    assert (f"nginx goes on serving the site's earlier one (serial {earlier.current_version.serial}"
            in html)
