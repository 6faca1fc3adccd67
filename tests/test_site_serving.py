"""Which certificate a site's vhost serves."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from certs.models import AcmeAccount, Certificate, CertificateVersion
from panel.deployment import dispatch
from panel.models import Site


def certificate_for(site, names, age_days):
    cert = Certificate.objects.create(owner=site.owner, site=site, account=AcmeAccount.objects.get(), domains=names)
    now = timezone.now()
    version = CertificateVersion.objects.create(
        certificate=cert, cert_pem="x", chain_pem="x", private_key="k", serial=f"{age_days}", issuer="CN=t",
        not_before=now, not_after=now + datetime.timedelta(days=90),
    )
    CertificateVersion.objects.filter(pk=version.pk).update(created_at=now - datetime.timedelta(days=age_days))
    Certificate.objects.filter(pk=cert.pk).update(current_version=version)
    return version


@pytest.mark.django_db
def test_a_site_serves_a_certificate_covering_all_its_names_over_a_newer_partial_one():
    owner = get_user_model().objects.create(username="o")
    AcmeAccount.objects.create(owner=owner, directory_url="https://ca.test/d", account_key="k", account_url="u")
    site = Site.objects.create(owner=owner, domains=["a.example.com", "www.a.example.com"], root="/var/www/a")
    assert site.serving_version() is None
    full = certificate_for(site, ["a.example.com", "www.a.example.com"], age_days=10)
    certificate_for(site, ["a.example.com"], age_days=1)
    assert site.serving_version().pk == full.pk


@pytest.mark.django_db
def test_without_a_covering_certificate_the_newest_is_served():
    owner = get_user_model().objects.create(username="o")
    AcmeAccount.objects.create(owner=owner, directory_url="https://ca.test/d", account_key="k", account_url="u")
    site = Site.objects.create(owner=owner, domains=["b.example.com", "www.b.example.com"], root="/var/www/b")
    certificate_for(site, ["b.example.com"], age_days=10)
    newest = certificate_for(site, ["www.b.example.com"], age_days=1)
    assert site.serving_version().pk == newest.pk


def test_a_site_whose_apply_was_lost_is_applied_again_and_not_asked_twice(db, queued, settings):
    """Redis restarted without persistence loses queued tasks: a new certificate's site would
    stay unserved. A site still pending ORDER_STALL_SECONDS after its apply was queued is queued again."""
    settings.ORDER_STALL_SECONDS = 60
    owner = get_user_model().objects.create(username="o")
    AcmeAccount.objects.create(owner=owner, directory_url="https://ca.test/d", account_key="k", account_url="u")
    lost = Site.objects.create(owner=owner, domains=["lost.example.com"], root="/var/www/lost",
                               config_status=Site.ConfigStatus.APPLIED)  # served, until a new certificate came
    fresh = Site.objects.create(owner=owner, domains=["fresh.example.com"], root="/var/www/fresh")
    applied = Site.objects.create(owner=owner, domains=["ok.example.com"], root="/var/www/ok",
                                  config_status=Site.ConfigStatus.APPLIED)
    version = certificate_for(lost, ["lost.example.com"], age_days=0)
    with transaction.atomic():
        dispatch.put_in_service(version.certificate)  # as the order that issued it does; the task gets lost
    assert Site.objects.get(pk=lost.pk).config_status == Site.ConfigStatus.PENDING
    long_ago = timezone.now() - datetime.timedelta(seconds=61)
    Site.objects.filter(pk__in=[lost.pk, applied.pk]).update(config_queued_at=long_ago)
    Site.objects.filter(pk=fresh.pk).update(config_queued_at=timezone.now())

    assert dispatch.resume_stalled_applies() == 1
    queued.apply_site.delay.assert_called_once_with(lost.pk)
    assert dispatch.resume_stalled_applies() == 0  # queued again just now: not at every sweep
