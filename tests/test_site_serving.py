"""Which certificate a site's vhost serves."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from certs.models import AcmeAccount, Certificate, CertificateVersion
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
