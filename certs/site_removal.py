"""What becomes of a deleted site's certificates: its owner chooses to keep renewing them, to
stop, or to revoke them at the CA. Only the owner's certificates that no other site of the owner
uses are concerned: one whose names are, or cover, a name of another of the owner's sites is
left as it is, and so is one another user (an administrator) owns. panel.hosting.sites.
delete_site asks this module: `release` inside the transaction that deletes the site, then
`revoke_all` once nginx no longer serves the site, so a failed revocation never leaves a
revoked certificate in service."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop, ngettext

from certs import orders, problems, versions
from certs.acme import AcmeError
from certs.models import Certificate, CertificateVersion
from certs.problems import Failure
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
    (certs.problems), `revoked` lists the versions it revoked before, `not_revoked` the
    certificates left with a valid version that is not revoked."""

    def __init__(self, names, failure, revoked, not_revoked, transient):
        super().__init__(f"{', '.join(names)}: {failure.english()}")
        self.names, self.failure, self.revoked = names, failure, revoked
        self.not_revoked, self.transient = not_revoked, transient

    def lead(self):
        """The page's and the API's first sentence about it, in the reader's language."""
        names = ", ".join(self.names)
        return _("The CA did not revoke the certificate for %(names)s.") % {"names": names}


def certificates_of(site):
    """(alone, shared, foreign): the site owner's certificates on the site that no other site of
    the owner uses, the owner's ones of which a name is, or covers, a name of another of the
    owner's sites, and those another user owns (an administrator issued them on the site):
    only `alone` is acted on."""
    others = SiteDomain.objects.filter(site__owner_id=site.owner_id).exclude(site_id=site.pk)
    other_names = set(others.values_list("name", flat=True))
    alone, shared, foreign = [], [], []
    for certificate in site.certificates.select_related("current_version").order_by("id"):
        if certificate.owner_id != site.owner_id:
            foreign.append(certificate)
            continue
        used = any(validation.name_covers(mine, other)
                   for mine in certificate.domains for other in other_names)
        (shared if used else alone).append(certificate)
    return alone, shared, foreign


def revoke_all(certificates):
    """Revoke, at the CA, every version of `certificates` the panel issued that is still valid
    (reason: cessation of operation); returns them. Raises RevocationFailed at the first
    one the CA does not revoke."""
    revoked = []
    still_valid = list(
        CertificateVersion.objects
        .filter(certificate__in=certificates, revoked_at__isnull=True, not_after__gt=timezone.now())
        .exclude(certificate__source=Certificate.Source.UPLOADED)
        .select_related("certificate__account").order_by("id")
    )
    for index, version in enumerate(still_valid):
        try:
            revoked.append(versions.revoke(version, CESSATION))
        except versions.RevocationRefused:
            continue  # revoked meanwhile
        except AcmeError as exc:
            certificate = version.certificate
            failure = problems.from_acme(exc, certificate.account.directory_url)
            left = {v.certificate_id: v.certificate for v in still_valid[index:]}
            raise RevocationFailed(certificate.domains, failure, revoked, list(left.values()),
                                   exc.transient) from exc
    return revoked


def release(certificates, choice):
    """Unless `choice` is to keep them: stop renewing `certificates`, and end their orders in
    flight, so that none stores a new version afterwards. Inside the transaction that deletes
    their site."""
    if choice == KEEP:
        return
    policy.stop_renewing([certificate.pk for certificate in certificates])
    ended = gettext_noop("Ended: the certificate's site was deleted, and its owner chose to stop "
                         "renewing the certificate.")
    orders.end_orders(certificates, Failure(ended))


def not_revoked_text(failed: RevocationFailed):
    """After a refused revocation (the site is deleted by then): what was revoked before it,
    and which certificates are left valid, for the page and the API."""
    done = {version.certificate_id: version.certificate for version in failed.revoked}
    revoked = _("Revoked: %(names)s.") % {"names": _names(done.values())} if done else ""
    left = ngettext(
        "Not revoked: %(names)s. The site is deleted, so nginx no longer serves it, and it is no "
        "longer renewed; it stays valid until it expires unless you revoke it from its page under "
        "Certificates.",
        "Not revoked: %(names)s. The site is deleted, so nginx no longer serves them, and they "
        "are no longer renewed; they stay valid until they expire unless you revoke them from "
        "their pages under Certificates.", len(failed.not_revoked),
    ) % {"names": _names(failed.not_revoked)}
    return problems.join(revoked, left)


def _names(certificates):
    return "; ".join(", ".join(certificate.domains) for certificate in certificates)
