"""When certificates renew, what the sweep starts, back-off, and `manage.py renew`."""

import datetime
from io import StringIO
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from certs import orders
from certs.models import AcmeAccount, Certificate, CertificateVersion, Order
from certs.renewal import policy, sweep


@pytest.fixture
def queued():
    with mock.patch.object(orders, "enqueue") as enqueue:
        yield enqueue


def make_certificate(days_valid=90, renew_in=None, age=datetime.timedelta(days=2), name="a.example.com"):
    owner, _ = get_user_model().objects.get_or_create(username="owner")
    account, _ = AcmeAccount.objects.get_or_create(owner=owner, directory_url="https://ca.test/d",
                                                   defaults={"account_key": "k", "account_url": "u"})
    now = timezone.now()
    cert = Certificate.objects.create(owner=owner, account=account, domains=[name], status="valid")
    version = CertificateVersion.objects.create(
        certificate=cert, cert_pem="x", chain_pem="x", private_key="k", serial="1", issuer="CN=t",
        not_before=now - age, not_after=now - age + datetime.timedelta(days=days_valid),
    )
    CertificateVersion.objects.filter(pk=version.pk).update(created_at=now - age)
    cert.current_version = version
    cert.next_renewal_at = policy.planned_renewal(version) if renew_in is None else now + renew_in
    cert.save()
    return cert


@pytest.mark.parametrize("days, expected_left", [(90, 30), (45, 15), (6, 2)])
def test_renewal_is_planned_when_a_third_of_the_lifetime_is_left(db, days, expected_left):
    version = make_certificate(days_valid=days).current_version
    for _ in range(20):
        left = version.not_after - policy.planned_renewal(version)
        jitter = left - datetime.timedelta(days=expected_left)
        assert datetime.timedelta(0) <= jitter <= min(datetime.timedelta(days=days) / 50,
                                                         datetime.timedelta(hours=12))


def test_the_sweep_starts_exactly_what_is_due(db, queued):
    due = make_certificate(renew_in=-datetime.timedelta(minutes=1), name="due.example.com")
    later = make_certificate(renew_in=datetime.timedelta(days=1), name="later.example.com")
    busy = make_certificate(renew_in=-datetime.timedelta(hours=1), name="busy.example.com")
    Order.objects.create(owner=busy.owner, certificate=busy)  # already in flight
    fresh = make_certificate(renew_in=-datetime.timedelta(minutes=1), age=datetime.timedelta(0),
                             name="fresh.example.com")  # just issued: never renewed at once
    assert sweep.sweep() == [due.pk]
    assert sweep.sweep() == []  # its order is active now
    assert Order.objects.filter(certificate=due, is_renewal=True).count() == 1
    assert not Order.objects.filter(certificate__in=[later, fresh]).exists()


def test_a_failed_renewal_backs_off_exponentially_and_honours_retry_after(db, settings):
    settings.RENEWAL_RETRY_SECONDS = 60
    cert = make_certificate()
    before = timezone.now()
    policy.failed(cert, "serverInternal: boom")
    assert cert.renewal_failures == 1
    assert datetime.timedelta(seconds=59) <= cert.next_renewal_at - before <= datetime.timedelta(seconds=61)
    policy.failed(cert, "serverInternal: boom")
    assert datetime.timedelta(seconds=119) <= cert.next_renewal_at - before <= datetime.timedelta(seconds=121)
    policy.failed(cert, "rateLimited: slow down", retry_after=7200)
    assert cert.next_renewal_at - before >= datetime.timedelta(seconds=7199)
    assert "retry #4" in policy.reason(cert)


def test_a_retry_is_never_planned_after_expiry(db, settings):
    settings.RENEWAL_RETRY_SECONDS = 86400
    cert = make_certificate(days_valid=3, age=datetime.timedelta(days=2, hours=23))  # expires in 1 h
    policy.failed(cert, "serverInternal: boom")
    assert cert.next_renewal_at <= cert.current_version.not_after


def test_renew_dry_run_lists_what_is_due_with_reasons_and_changes_nothing(db, queued):
    due = make_certificate(renew_in=-datetime.timedelta(minutes=1), name="due.example.com")
    make_certificate(renew_in=datetime.timedelta(days=10), name="later.example.com")
    planned = Certificate.objects.get(pk=due.pk).next_renewal_at
    out = StringIO()
    call_command("renew", "--dry-run", stdout=out)
    text = out.getvalue()
    assert f"would renew #{due.pk} due.example.com:" in text and "days left" in text
    assert "later.example.com" not in text
    assert Order.objects.count() == 0
    assert Certificate.objects.get(pk=due.pk).next_renewal_at == planned
    queued.assert_not_called()


def test_renew_starts_the_due_ones_and_force_renews_one(db, queued):
    due = make_certificate(renew_in=-datetime.timedelta(minutes=1), name="due.example.com")
    later = make_certificate(renew_in=datetime.timedelta(days=10), name="later.example.com")
    out = StringIO()
    call_command("renew", stdout=out)
    assert f"renewing #{due.pk}" in out.getvalue()
    call_command("renew", "--force", "--cert", str(later.pk), stdout=out)
    assert f"renewing #{later.pk} later.example.com: forced" in out.getvalue()
    assert set(Order.objects.values_list("certificate_id", flat=True)) == {due.pk, later.pk}
