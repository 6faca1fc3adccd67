"""A data set for the list pages at scale: tests/test_list_scale.py and bench/ui fill it.

Needs Django set up (it imports the models).
"""

import datetime
import random
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from certs.models import AcmeAccount, Certificate, CertificateVersion, DnsCredential
from panel.models import Site, SiteDomain

# As long as an EC P-256 leaf and its fullchain: list pages must not drag them through a sort.
LEAF_PEM = "-----BEGIN CERTIFICATE-----\n" + "A" * 1_000 + "\n-----END CERTIFICATE-----\n"
FULLCHAIN_PEM = LEAF_PEM + LEAF_PEM.replace("A", "B") * 2
CONFIG_STATUSES = (Site.ConfigStatus.APPLIED, Site.ConfigStatus.FAILED, Site.ConfigStatus.PENDING)


@dataclass
class Row:
    """What the test knows about a site or certificate it made, to predict each ordering."""
    pk: int
    name: str
    position: int  # creation order
    rank: int  # status: 0 first when sorted by status / config
    not_after: datetime.datetime | None


def fill(owner, label, n, now):
    """n sites (9 in 10 with a certificate) and n certificates (the rest without a site), n ACME
    accounts and n DNS credentials for `owner`. Numbers are shuffled so that creation order,
    name order and expiry order all differ."""
    numbers = list(range(n))
    random.Random(label).shuffle(numbers)
    sites = Site.objects.bulk_create([
        Site(owner=owner, domains=[f"site{k:05}.{label}.test", f"www.site{k:05}.{label}.test"],
             primary_domain=f"site{k:05}.{label}.test", root="/srv/www/site",
             config_status=CONFIG_STATUSES[k % 3])
        for k in numbers
    ])
    SiteDomain.objects.bulk_create([SiteDomain(site=site, name=name) for site in sites for name in site.domains])
    accounts = AcmeAccount.objects.bulk_create([
        AcmeAccount(owner=owner, directory_url="https://ca.test/directory", account_key="",
                    account_url=f"https://ca.test/acct/{label}/{k}") for k in range(n)
    ])
    DnsCredential.objects.bulk_create([
        DnsCredential(owner=owner, provider="rfc2136", name=f"dns {label} {k:05}", credentials="")
        for k in range(n)
    ])

    certificates = []
    for position, (k, site) in enumerate(zip(numbers, sites)):
        with_site = position % 10 != 9
        domains = site.domains if with_site else [f"other{k:05}.{label}.test"]
        status = (Certificate.Status.PENDING if k % 13 == 0 else
                  Certificate.Status.FAILED if k % 11 == 0 else Certificate.Status.VALID)
        certificates.append(Certificate(owner=owner, site=site if with_site else None, account=accounts[0],
                                        domains=domains, status=status))
    Certificate.objects.bulk_create(certificates)
    expiry = {c.pk: now + datetime.timedelta(days=(c.pk * 37) % 400 - 20, minutes=c.pk)
              for c in certificates if c.status != Certificate.Status.PENDING}
    CertificateVersion.objects.bulk_create([
        CertificateVersion(certificate_id=pk, cert_pem=LEAF_PEM, chain_pem=FULLCHAIN_PEM, private_key="", serial=f"{pk:x}",
                           issuer="CN=Test CA", not_before=now - datetime.timedelta(days=1), not_after=not_after)
        for pk, not_after in expiry.items()
    ])
    Certificate.objects.filter(owner=owner).update(current_version=Subquery(
        CertificateVersion.objects.filter(certificate=OuterRef("pk")).values("pk")[:1]))

    status_rank = {Certificate.Status.FAILED: 0, Certificate.Status.PENDING: 1, Certificate.Status.VALID: 2}
    config_rank = {Site.ConfigStatus.FAILED: 0, Site.ConfigStatus.PENDING: 1, Site.ConfigStatus.APPLIED: 2}
    site_expiry = {c.site.pk: expiry.get(c.pk) for c in certificates if c.site}
    return {
        "sites": [Row(s.pk, s.primary_domain, i, config_rank[s.config_status], site_expiry.get(s.pk))
                  for i, s in enumerate(sites)],
        "certificates": [Row(c.pk, c.domains[0], i, status_rank[c.status], expiry.get(c.pk))
                         for i, c in enumerate(certificates)],
    }
