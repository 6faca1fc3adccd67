"""What becomes of a deleted site's certificates: its owner chooses to keep renewing them, to
stop, or to revoke them at the CA. Only certificates that no other site of the owner uses are
concerned: one whose names are, or cover, a name of another of the owner's sites is left as
it is. panel.hosting.sites.delete_site asks this module before deleting the site."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from certs import problems, versions
from certs.acme import AcmeError
from certs.models import Certificate, CertificateVersion
from certs.renewal import policy
from panel.models import SiteDomain
from panel.toolkit import validation


class CertificatesChoice(models.TextChoices):
    KEEP = "keep", gettext_lazy("Keep renewing them")
    STOP = "stop", gettext_lazy("Stop renewing them: they stay valid until they expire")
    REVOKE = "revoke", gettext_lazy("Revoke them at the CA, and stop renewing them")


KEEP, STOP, REVOKE = CertificatesChoice.KEEP, CertificatesChoice.STOP, CertificatesChoice.REVOKE
CESSATION = versions.RevocationReason.CESSATION_OF_OPERATION  # the names are no longer used


class RevocationFailed(Exception):
    """The CA did not revoke a version of the certificate for `names`: `failure` says why
    (certs.problems), `revoked` lists the versions it revoked before."""

    def __init__(self, names, failure, revoked, transient):
        super().__init__(f"{', '.join(names)}: {failure.english()}")
        self.names, self.failure, self.revoked, self.transient = names, failure, revoked, transient


def certificates_of(site):
    """(alone, shared): the site's certificates that no other site of its owner uses, and those
    one of whose names is, or covers, a name of another of the owner's sites."""
    others = SiteDomain.objects.filter(site__owner_id=site.owner_id).exclude(site_id=site.pk)
    other_names = set(others.values_list("name", flat=True))
    alone, shared = [], []
    for certificate in site.certificates.select_related("current_version").order_by("id"):
        used = any(validation.name_covers(mine, other)
                   for mine in certificate.domains for other in other_names)
        (shared if used else alone).append(certificate)
    return alone, shared


def revoke_all(certificates):
    """Revoke, at the CA, every version of `certificates` the panel issued that is still valid
    (reason: cessation of operation); returns them. Raises RevocationFailed at the first
    one the CA does not revoke."""
    revoked = []
    still_valid = (
        CertificateVersion.objects
        .filter(certificate__in=certificates, revoked_at__isnull=True, not_after__gt=timezone.now())
        .exclude(certificate__source=Certificate.Source.UPLOADED)
        .select_related("certificate__account").order_by("id")
    )
    for version in still_valid:
        try:
            revoked.append(versions.revoke(version, CESSATION))
        except versions.RevocationRefused:
            continue  # revoked meanwhile
        except AcmeError as exc:
            certificate = version.certificate
            failure = problems.from_acme(exc, certificate.account.directory_url)
            raise RevocationFailed(certificate.domains, failure, revoked, exc.transient) from exc
    return revoked


def release(certificates, choice):
    """Stop renewing `certificates` unless `choice` is to keep them. Inside the transaction that
    deletes their site; revoke_all goes first, outside it (it talks to the CA)."""
    if choice != KEEP:
        policy.stop_renewing([certificate.pk for certificate in certificates])
