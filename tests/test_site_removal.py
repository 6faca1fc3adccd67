"""Deleting a site asks what becomes of its certificates: keep renewing them, stop, or revoke
them at the CA. Only those no other site of the owner uses are concerned; the confirmation
page lists them. The API's DELETE takes the same choice.

The CA is a fake at the one seam (certs.accounts.client_for); nothing reaches Celery
(tests/conftest.py `queued`); certificates are real X.509 (tests/test_versions.py)."""

import datetime
import re
from types import SimpleNamespace
from unittest import mock

import pytest
from cryptography import x509
from django.contrib.auth import get_user_model
from django.core.cache.backends.locmem import LocMemCache
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from certs import accounts, notifications, orders
from certs.acme import AcmeError, generate_private_key, make_csr
from certs.models import Certificate, CertificateVersion, Order
from certs.problems import Failure
from certs.renewal import policy, sweep
from panel.hosting import sites
from panel.models import Site
from panel.security.audit import Action, AuditEntry
from tests.test_orders import FakeCA
from tests.test_ui_dashboard import shown_counts
from tests.test_versions import add_version, make_certificate

pytestmark = pytest.mark.usefixtures("queued")

LATER = timezone.now() + datetime.timedelta(days=365)  # every planned renewal is due by then
CESSATION_OF_OPERATION = 5


@pytest.fixture
def ca(monkeypatch):
    """The fake CA: records revocations, offers an ARI window that is due at once."""
    fake = SimpleNamespace(revoked=[], error=None)

    class Client:
        def __init__(self, account):
            self.account = account

        def revoke(self, cert_pem, reason_code):
            if fake.error:
                raise fake.error
            fake.revoked.append((cert_pem, reason_code))

        def renewal_info(self, cert_pem):
            now = timezone.now()
            return now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=1), 3600

    monkeypatch.setattr(accounts, "client_for", Client)
    return fake


@pytest.fixture
def site(alice, home_root):
    return sites.save_site(Site(owner=alice, domains=["a.example.com", "www.a.example.com"],
                                root=str(home_root / "alice" / "a")))


@pytest.fixture
def other_site(alice, home_root):
    return sites.save_site(Site(owner=alice, domains=["b.example.com"],
                                root=str(home_root / "alice" / "b")))


def planned(certificate):
    """An issued certificate as the renewal sweep sees it: renewal planned, versions not young."""
    month = datetime.timedelta(days=30)
    Certificate.objects.filter(pk=certificate.pk).update(next_renewal_at=timezone.now() + month)
    versions = CertificateVersion.objects.filter(certificate=certificate)
    versions.update(created_at=timezone.now() - month)
    certificate.refresh_from_db()
    return certificate


@pytest.fixture
def alone(alice, site):
    """Only this site uses it (DNS-01: it can renew without the site)."""
    names = ["a.example.com", "www.a.example.com"]
    return planned(make_certificate(alice, names, site=site, challenge="dns-01"))


@pytest.fixture
def shared(alice, site, other_site):
    """The site's, but it also covers a name of the owner's other site."""
    names = ["a.example.com", "b.example.com"]
    return planned(make_certificate(alice, names, site=site, challenge="dns-01"))


def delete_url(site):
    return reverse("ui:site-delete", args=[site.pk])


def renews(certificate):
    return certificate.pk in sweep.sweep(now=LATER)


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_page_lists_the_certificates_only_this_site_uses(alice_client, site, alone, shared):
    html = alice_client.get(delete_url(site)).content.decode()

    choices = re.search(r'<ul class="plain site-delete-certificates">(.*?)</ul>', html, re.S)[1]
    kept = re.search(r'<ul class="plain site-delete-shared">(.*?)</ul>', html, re.S)[1]
    assert reverse("ui:certificate-detail", args=[alone.pk]) in choices
    assert reverse("ui:certificate-detail", args=[shared.pk]) not in choices
    assert "a.example.com, b.example.com" in kept
    for value in ("keep", "stop", "revoke"):
        assert re.search(rf'<input type="radio" name="certificates" value="{value}"', html)
    assert re.search(r'<input type="radio" name="certificates" value="keep"[^>]*checked', html)
    assert Site.objects.filter(pk=site.pk).exists()


def test_keep_leaves_the_certificate_renewing(alice_client, site, alone, ca):
    response = alice_client.post(delete_url(site), {"certificates": "keep"})

    assert response["Location"] == reverse("ui:site-list")
    assert not Site.objects.filter(pk=site.pk).exists()
    alone.refresh_from_db()
    assert alone.site is None and alone.next_renewal_at is not None
    assert renews(alone) and ca.revoked == []


def test_without_a_choice_the_certificates_are_kept(alice_client, site, alone):
    alice_client.post(delete_url(site))

    assert renews(alone)


def test_stop_means_no_next_renewal(alice_client, site, alone, shared, ca):
    response = alice_client.post(delete_url(site), {"certificates": "stop"}, follow=True)

    assert "Its certificate is no longer renewed." in response.content.decode()
    alone.refresh_from_db()
    assert alone.next_renewal_at is None and alone.ari_check_after is None
    assert alone.status == Certificate.Status.VALID and alone.current_version.revoked_at is None
    # An ARI check queued before the deletion does not plan it again.
    policy.refresh_ari(alone.pk)
    alone.refresh_from_db()
    assert alone.next_renewal_at is None
    assert sweep.sweep(now=LATER) == [shared.pk]  # the shared one still renews
    assert ca.revoked == []
    overview = alice_client.get(reverse("ui:renewal-overview")).content.decode()
    assert overview.count("Not renewed automatically") == 1


def test_revoke_revokes_every_valid_version_at_the_ca(alice_client, alice, site, alone, shared, ca):
    older = alone.current_version
    newer = add_version(alone)  # the previous version is still valid too
    expired = add_version(alone, days_left=-1, current=False)

    response = alice_client.post(delete_url(site), {"certificates": "revoke"})

    assert response["Location"] == reverse("ui:site-list")
    assert not Site.objects.filter(pk=site.pk).exists()
    assert sorted(ca.revoked) == sorted([(older.cert_pem, CESSATION_OF_OPERATION),
                                         (newer.cert_pem, CESSATION_OF_OPERATION)])
    for version in (older, newer):
        version.refresh_from_db()
        assert version.revoked_at is not None
        assert version.revocation_reason == "cessationOfOperation"
    expired.refresh_from_db()
    assert expired.revoked_at is None
    assert not renews(alone)
    shared.refresh_from_db()
    assert shared.current_version.revoked_at is None and shared.next_renewal_at is not None
    entries = AuditEntry.objects.filter(action=Action.REVOKE).order_by("id")
    assert [(e.actor, e.object_id, e.details) for e in entries] == [
        (alice, str(v.pk), {"reason": "cessationOfOperation"}) for v in (older, newer)]


def test_a_revocation_the_ca_refuses_leaves_no_site_serving_a_revoked_certificate(
        alice_client, alice, site, alone, ca, monkeypatch):
    """The CA revokes the first certificate and refuses the second: the site is gone by then
    (revoking comes last), and the page says what was revoked and what is left valid."""
    second = planned(make_certificate(alice, ["www.a.example.com"], site=site,
                                      challenge="dns-01"))
    answers = iter([None, AcmeError("not yours", problem_type="unauthorized")])

    def revoke(client, cert_pem, reason_code):
        answer = next(answers)
        if answer:
            raise answer
        ca.revoked.append((cert_pem, reason_code))

    monkeypatch.setattr(accounts.client_for, "revoke", revoke)

    response = alice_client.post(delete_url(site), {"certificates": "revoke"}, follow=True)

    html = response.content.decode()
    assert "Site a.example.com deleted; nginx no longer serves it." in html
    assert "The CA did not revoke the certificate for www.a.example.com." in html
    assert "check that the names are yours" in html  # the hint for "unauthorized"
    assert "Revoked: a.example.com, www.a.example.com." in html
    assert "Not revoked: www.a.example.com. The site is deleted" in html
    assert not Site.objects.filter(pk=site.pk).exists()
    assert ca.revoked == [(alone.current_version.cert_pem, CESSATION_OF_OPERATION)]
    second.refresh_from_db()
    assert second.current_version.revoked_at is None and not renews(second)
    assert [e.object_id for e in AuditEntry.objects.filter(action=Action.REVOKE)] == [
        str(alone.current_version.pk)]


def test_a_certificate_shared_with_another_site_is_untouched(alice_client, site, shared, ca):
    alice_client.post(delete_url(site), {"certificates": "revoke"})

    assert not Site.objects.filter(pk=site.pk).exists()
    assert ca.revoked == []
    assert renews(shared)


def test_the_api_takes_the_choice(alice, site, alone, ca):
    api = api_for(alice)
    url = f"/api/v1/sites/{site.pk}/"

    response = api.delete(url + "?certificates=sometimes")
    assert response.status_code == 400 and "keep, stop, revoke" in response.content.decode()
    assert Site.objects.filter(pk=site.pk).exists()

    response = api.delete(url + "?certificates=stop")
    assert response.status_code == 204
    assert not Site.objects.filter(pk=site.pk).exists()
    alone.refresh_from_db()
    assert alone.next_renewal_at is None and ca.revoked == []


def test_the_api_revokes_and_keeps_by_default(alice, home_root, ca):
    first, second = (sites.save_site(Site(owner=alice, domains=[name],
                                          root=str(home_root / "alice" / name)))
                     for name in ("c.example.com", "d.example.com"))
    revoked = planned(make_certificate(alice, ["c.example.com"], site=first, challenge="dns-01"))
    kept = planned(make_certificate(alice, ["d.example.com"], site=second, challenge="dns-01"))
    api = api_for(alice)

    assert api.delete(f"/api/v1/sites/{first.pk}/?certificates=revoke").status_code == 204
    assert api.delete(f"/api/v1/sites/{second.pk}/").status_code == 204

    assert ca.revoked == [(revoked.current_version.cert_pem, CESSATION_OF_OPERATION)]
    assert sweep.sweep(now=LATER) == [kept.pk]
    assert Order.objects.filter(certificate=kept, is_renewal=True).exists()


def test_the_api_says_when_the_ca_did_not_revoke(alice, site, alone, ca):
    ca.error = AcmeError("cannot reach the CA", transient=True)

    response = api_for(alice).delete(f"/api/v1/sites/{site.pk}/?certificates=revoke")

    detail = response.json()["detail"]
    assert response.status_code == 502
    assert "Not revoked: a.example.com, www.a.example.com. The site is deleted" in detail
    assert response.json()["ca_error"]["raw"] == "cannot reach the CA"
    assert not Site.objects.filter(pk=site.pk).exists()
    assert not renews(alone)


def test_an_http01_certificate_would_not_renew_without_the_site(alice_client, alice, site):
    make_certificate(alice, ["a.example.com"], site=site)

    html = alice_client.get(delete_url(site)).content.decode()

    assert "Renewing over HTTP-01 needs the names on one of the owner" in html


def test_another_users_site_is_a_404(bob_client, bob, site, alone, ca):
    with mock.patch.object(sites, "delete_site") as delete_site:
        assert bob_client.post(delete_url(site), {"certificates": "revoke"}).status_code == 404
        response = api_for(bob).delete(f"/api/v1/sites/{site.pk}/?certificates=revoke")
        assert response.status_code == 404
    delete_site.assert_not_called()
    assert ca.revoked == []


def test_a_certificate_another_user_owns_is_listed_as_kept_and_never_touched(
        alice_client, alice, site, alone, ca):
    """An administrator issued a certificate (theirs) on alice's site: alice's choice is not
    theirs to make, on the page or through the API."""
    admin = get_user_model().objects.create_user("root", password="pw-root-12345",
                                                 is_superuser=True)
    admins = planned(make_certificate(admin, ["a.example.com"], site=site, challenge="dns-01"))

    html = alice_client.get(delete_url(site)).content.decode()
    choices = re.search(r'<ul class="plain site-delete-certificates">(.*?)</ul>', html, re.S)[1]
    kept = re.search(r'<ul class="plain site-delete-foreign">(.*?)</ul>', html, re.S)[1]
    assert reverse("ui:certificate-detail", args=[admins.pk]) not in html
    assert "a.example.com" in kept and "www.a.example.com" in choices
    assert "Kept as they are, since another user owns them" in html

    alice_client.post(delete_url(site), {"certificates": "revoke"})

    assert ca.revoked == [(alone.current_version.cert_pem, CESSATION_OF_OPERATION)]
    admins.refresh_from_db()
    assert admins.current_version.revoked_at is None and not admins.renewal_stopped
    assert renews(admins)


def test_the_api_leaves_another_users_certificate_alone(alice, home_root, ca):
    site = sites.save_site(Site(owner=alice, domains=["c.example.com"],
                                root=str(home_root / "alice" / "c")))
    admin = get_user_model().objects.create_user("root", password="pw-root-12345",
                                                 is_superuser=True)
    admins = planned(make_certificate(admin, ["c.example.com"], site=site, challenge="dns-01"))

    assert api_for(alice).delete(f"/api/v1/sites/{site.pk}/?certificates=revoke").status_code == 204

    assert ca.revoked == []
    assert renews(admins)


def in_flight(certificate, status, **fields):
    """An order of `certificate` still running, as a worker left it."""
    return Order.objects.create(owner=certificate.owner, certificate=certificate, status=status,
                                is_renewal=True, acme_url="https://ca.test/order/1",
                                finalize_url="https://ca.test/finalize/1", **fields)


@pytest.mark.parametrize("choice", ["stop", "revoke"])
def test_stop_and_revoke_end_the_orders_in_flight(alice_client, alice, site, alone, ca, choice,
                                                  monkeypatch):
    """A manual DNS-01 order waiting for the user, and one a worker is finalizing at that
    moment: neither stores a version after the site is deleted, nor plans a renewal."""
    waiting = in_flight(alone, Order.Status.AWAITING_USER)
    second = planned(make_certificate(alice, ["www.a.example.com"], site=site,
                                      challenge="dns-01"))
    key = generate_private_key(second.key_type)
    finalizing = in_flight(second, Order.Status.FINALIZING, private_key=key,
                           csr_pem=make_csr(key, second.domains).decode())
    fake = FakeCA()
    fake.order_status, fake.csr = "valid", x509.load_pem_x509_csr(finalizing.csr_pem.encode())
    running = orders.claim(finalizing.pk, finalizing.wakeup)  # a worker took the step
    versions_before = CertificateVersion.objects.count()

    alice_client.post(delete_url(site), {"certificates": choice})

    for order in (waiting, finalizing):
        order.refresh_from_db()
        assert order.status == Order.Status.INVALID
        assert "site was deleted" in order.error
    assert orders.claim(waiting.pk, waiting.wakeup) == orders.Claim.STALE
    assert not orders.continue_order(waiting)
    monkeypatch.setattr(orders.accounts, "client_for", lambda account: fake)
    monkeypatch.setattr(orders, "enqueue", lambda *args: None)
    assert orders.run_step(running) is None  # the CA issued; the worker stores nothing
    assert CertificateVersion.objects.count() == versions_before
    for certificate in (alone, second):
        certificate.refresh_from_db()
        assert certificate.next_renewal_at is None and certificate.renewal_stopped
    finalizing.refresh_from_db()
    assert finalizing.status == Order.Status.INVALID


def test_the_order_log_says_why_in_the_readers_language(alice_client, site, alone):
    waiting = in_flight(alone, Order.Status.AWAITING_USER)

    alice_client.post(delete_url(site), {"certificates": "stop"})

    waiting.refresh_from_db()
    with translation.override("zh-hans"):
        shown = str(Failure(waiting.failure["message"], waiting.failure["params"]).text)
    assert shown != waiting.error and "网站已删除" in shown


def test_stopped_and_revoked_certificates_send_no_expiry_alert(alice, site, alone, ca,
                                                                monkeypatch):
    """A certificate nobody renews any more is meant to run out: no daily "expiring" mail.
    One still renewing, and one renewed by hand again, are alerted on."""
    monkeypatch.setattr(notifications, "cache", LocMemCache("expiry-alerts-removal", {}))
    now = timezone.now()
    soon = now + datetime.timedelta(days=10)
    CertificateVersion.objects.update(not_after=soon)
    kept = make_certificate(alice, ["k.example.com"], days_left=10, challenge="dns-01")
    revoked = make_certificate(alice, ["r.example.com"], days_left=10, challenge="dns-01")
    CertificateVersion.objects.filter(certificate=revoked).update(revoked_at=now)

    sites.delete_site(site, "stop")

    assert notifications.expiry_alerts(now) == [kept.pk]
    orders.start_order(alone, is_renewal=True, asked_by_user=True)  # "Renew now"
    alone.refresh_from_db()
    assert not alone.renewal_stopped
    assert notifications.expiry_alerts(now + datetime.timedelta(days=1)) == sorted(
        [alone.pk, kept.pk], reverse=True)


def test_a_stopped_certificate_is_not_counted_as_expiring(alice_client, alice, site, alone):
    CertificateVersion.objects.update(not_after=timezone.now() + datetime.timedelta(days=10))
    make_certificate(alice, ["k.example.com"], days_left=10, challenge="dns-01")

    before = shown_counts(alice_client.get(reverse("ui:dashboard")).content.decode())
    alice_client.post(delete_url(site), {"certificates": "stop"})
    after = shown_counts(alice_client.get(reverse("ui:dashboard")).content.decode())

    assert (before["expiring"], after["expiring"]) == (2, 1)
    listed = alice_client.get(reverse("ui:certificate-list"), {"status": "expiring"})
    assert "k.example.com" in listed.content.decode()
    assert "www.a.example.com" not in listed.content.decode()
