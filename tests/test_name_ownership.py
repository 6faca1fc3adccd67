"""A certificate validated with HTTP-01 keeps only names of its owner's sites, at renewal and on
every order asked for, not only when it was requested: a user who gave a name up (removed it
from their site, or another user's site has it now) neither renews it nor gets a new key for it.
Administrators, and DNS-01 (which proves control of the zone), are exempt, as when requesting.

Nothing reaches Celery (tests/conftest.py `queued`); the CA is never reached by a refused
order, and a stand-in at certs.accounts.client_for shows when an order goes on to it."""

import datetime
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from certs import accounts, orders
from certs.acme import AcmeError
from certs.models import AcmeAccount, Certificate, CertificateVersion, ChallengeType, Order
from certs.renewal import policy, sweep
from panel.hosting import sites
from panel.models import Site

pytestmark = pytest.mark.usefixtures("queued")  # tests/conftest.py

NAMES = ["a.example.com", "b.example.com"]


@pytest.fixture
def site(alice, settings, tmp_path):
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    return sites.save_site(Site(owner=alice, domains=list(NAMES), root=str(tmp_path / "www" / "a")))


def make_certificate(owner, names=NAMES, site=None, challenge=ChallengeType.HTTP01, renew_in_days=-1):
    """A certificate with a current version issued 60 days ago, its renewal `renew_in_days` away."""
    account = AcmeAccount.objects.create(owner=owner, directory_url="https://ca.test/directory", account_key="-",
                                         account_url=f"https://ca.test/acct/{owner.pk}")
    cert = Certificate.objects.create(owner=owner, account=account, domains=list(names), site=site,
                                      challenge=challenge, status=Certificate.Status.VALID)
    issued = timezone.now() - datetime.timedelta(days=60)
    version = CertificateVersion.objects.create(certificate=cert, cert_pem="-", chain_pem="-", private_key="-",
                                                serial="1", issuer="CN=Test CA", not_before=issued,
                                                not_after=issued + datetime.timedelta(days=90))
    CertificateVersion.objects.filter(pk=version.pk).update(created_at=issued)  # old enough to renew
    cert.current_version = version
    cert.next_renewal_at = timezone.now() + datetime.timedelta(days=renew_in_days)
    cert.save()
    return cert


@pytest.fixture
def ca(monkeypatch):
    """Records that an order went on to the CA, and stops it there."""
    asked = []

    def client_for(account):
        asked.append(account.pk)
        raise AcmeError("stopped at the CA by the test", transient=False)

    monkeypatch.setattr(accounts, "client_for", client_for)
    return asked


@pytest.fixture
def notify():
    with mock.patch("certs.notifications.notify") as notify:
        yield notify


def sweep_and_run_first_step(cert, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep.sweep() == [cert.pk]
    order = cert.orders.get(is_renewal=True)
    claimed = orders.claim(order.pk, order.wakeup)
    orders.run_step(claimed)
    order.refresh_from_db()
    cert.refresh_from_db()
    return order


def assert_refused_renewal(cert, order, lost, ca, notify):
    assert order.status == Order.Status.INVALID
    assert f"No longer on the owner's sites: {', '.join(lost)}." in order.error
    assert "Add them to one of the owner's sites again and renew" in order.error
    assert ca == []  # refused before the CA was asked
    # The certificate stops renewing and says why: no sweep picks it again, however late.
    assert cert.status == Certificate.Status.FAILED and cert.last_error == order.error
    assert cert.next_renewal_at is None
    assert cert not in policy.due(timezone.now() + datetime.timedelta(days=365))
    assert sweep.sweep() == []
    [call] = notify.call_args_list
    owner_id, event, subject, body = call.args
    assert (owner_id, event) == (cert.owner_id, "renewal_failed")
    assert "a.example.com" in subject and order.error in body and "renewed by hand" in body


# --- renewal by the sweep


def test_a_renewal_of_a_name_the_owner_removed_from_their_site_fails_and_stops(
        alice, site, ca, notify, django_capture_on_commit_callbacks):
    cert = make_certificate(alice, site=site)
    site.domains = ["a.example.com"]
    sites.save_site(site)

    order = sweep_and_run_first_step(cert, django_capture_on_commit_callbacks)

    assert_refused_renewal(cert, order, ["b.example.com"], ca, notify)


def test_a_renewal_of_a_name_now_on_another_users_site_fails_and_stops(
        alice, bob, site, ca, notify, tmp_path, django_capture_on_commit_callbacks):
    cert = make_certificate(alice, site=site)
    sites.delete_site(site)
    sites.save_site(Site(owner=bob, domains=list(NAMES), root=str(tmp_path / "www" / "b")))

    order = sweep_and_run_first_step(cert, django_capture_on_commit_callbacks)

    assert_refused_renewal(cert, order, NAMES, ca, notify)


def test_a_renewal_of_names_still_on_the_owners_sites_goes_to_the_ca(
        alice, site, ca, notify, django_capture_on_commit_callbacks):
    cert = make_certificate(alice, site=site)

    order = sweep_and_run_first_step(cert, django_capture_on_commit_callbacks)

    assert ca == [cert.account_id] and order.error.endswith("stopped at the CA by the test")
    assert cert.next_renewal_at is not None  # an ordinary failure: tried again later


@pytest.mark.parametrize("who, challenge", [("admin", ChallengeType.HTTP01), ("alice", ChallengeType.DNS01_MANUAL)])
def test_admins_and_dns_01_renew_names_of_no_site_as_before(
        who, challenge, alice, ca, notify, django_capture_on_commit_callbacks):
    owner = alice if who == "alice" else get_user_model().objects.create_superuser("root", password="pw-root-123")
    cert = make_certificate(owner, names=["elsewhere.example.net"], challenge=challenge)

    order = sweep_and_run_first_step(cert, django_capture_on_commit_callbacks)

    assert ca == [cert.account_id] and order.error.endswith("stopped at the CA by the test")
    assert cert.next_renewal_at is not None and cert.status == Certificate.Status.VALID


# --- renew and re-issue asked for in the UI and the API


@pytest.fixture
def given_up(alice, site):
    """Alice's certificate for both names; b.example.com is no longer on her site."""
    cert = make_certificate(alice, site=site, renew_in_days=30)
    site.domains = ["a.example.com"]
    sites.save_site(site)
    return cert


@pytest.mark.parametrize("url_name", ["ui:certificate-renew", "ui:certificate-reissue"])
def test_the_ui_refuses_to_renew_or_re_issue_names_given_up(url_name, alice_client, given_up, queued):
    response = alice_client.post(reverse(url_name, args=[given_up.pk]), follow=True)

    assert response.status_code == 200
    text = [str(m) for m in response.context["messages"]]
    assert text == ["No longer on the owner's sites: b.example.com. Add them to one of the owner's sites again and "
                    "renew, or request a certificate without them."]
    assert not given_up.orders.exists()
    queued.enqueue.assert_not_called()


def test_the_api_refuses_to_renew_names_given_up(alice, given_up, queued):
    api = APIClient()
    api.force_authenticate(alice)

    response = api.post(f"/api/v1/certificates/{given_up.pk}/renew/")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("No longer on the owner's sites: b.example.com.")
    assert not given_up.orders.exists()
    queued.enqueue.assert_not_called()


def test_the_refusal_is_in_the_users_language(alice, given_up):
    api = APIClient()
    api.force_authenticate(alice)

    response = api.post(f"/api/v1/certificates/{given_up.pk}/renew/", headers={"accept-language": "zh-hans"})

    assert response.status_code == 400 and "b.example.com" in response.json()["detail"]
    assert "No longer" not in response.json()["detail"]


@pytest.mark.parametrize("who, challenge", [("admin", ChallengeType.HTTP01), ("alice", ChallengeType.DNS01_MANUAL)])
def test_admins_and_dns_01_renew_names_of_no_site_from_the_ui_and_the_api_as_before(
        who, challenge, alice, client, queued, django_capture_on_commit_callbacks):
    owner = alice if who == "alice" else get_user_model().objects.create_superuser("root", password="pw-root-123")
    cert = make_certificate(owner, names=["elsewhere.example.net"], challenge=challenge)
    client.force_login(owner)
    api = APIClient()
    api.force_authenticate(owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("ui:certificate-reissue", args=[cert.pk]), follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "Re-issue started: a new certificate with a new key is being ordered."]
    Order.objects.filter(certificate=cert).update(status=Order.Status.INVALID)  # finished: room for the next
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/v1/certificates/{cert.pk}/renew/").status_code == 202
    assert cert.orders.count() == 2 and queued.enqueue.call_count == 2
