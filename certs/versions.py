"""Issued certificate versions: who may reach one, revoking it at the CA, exporting it as files.

Revocation is signed with the certificate's own ACME account, the one that ordered every
version of it, so any version the panel issued can be revoked. Exports are built from
what is stored: the leaf, the full chain and the (decrypted) private key. A PFX is always
protected by a password the user gives for that one download; it is never stored.
"""

import io
import logging
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from django.db import models
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from certs import accounts
from certs.acme import AcmeError
from certs.models import Certificate, CertificateVersion
from panel.toolkit import access

log = logging.getLogger(__name__)


class RevocationReason(models.TextChoices):
    """The reasons ACME CAs accept (RFC 8555 §7.6 with RFC 5280 CRLReason codes)."""

    UNSPECIFIED = "unspecified", gettext_lazy("Unspecified")
    KEY_COMPROMISE = "keyCompromise", gettext_lazy("Key compromise: the private key may be known to others")
    SUPERSEDED = "superseded", gettext_lazy("Superseded: replaced by another certificate")
    CESSATION_OF_OPERATION = "cessationOfOperation", gettext_lazy("Cessation of operation: the names are no longer used")
    AFFILIATION_CHANGED = "affiliationChanged", gettext_lazy("Affiliation changed: the names changed hands")


REASON_CODES = {
    RevocationReason.UNSPECIFIED: 0,
    RevocationReason.KEY_COMPROMISE: 1,
    RevocationReason.AFFILIATION_CHANGED: 3,
    RevocationReason.SUPERSEDED: 4,
    RevocationReason.CESSATION_OF_OPERATION: 5,
}


class ExportFormat(models.TextChoices):
    PEM_KEY = "pem-key", gettext_lazy("Private key (PEM)")
    CERT = "cert", gettext_lazy("Certificate (PEM)")
    FULLCHAIN = "fullchain", gettext_lazy("Full chain (PEM)")
    PFX = "pfx", gettext_lazy("PFX / PKCS#12")


# Formats that carry the private key: only the certificate's owner gets them, only for a POST.
SECRET_FORMATS = frozenset({ExportFormat.PEM_KEY, ExportFormat.PFX})


class RevocationRefused(Exception):
    """The panel will not ask the CA (e.g. the version is already revoked)."""


class ExportRefused(Exception):
    """The export cannot be made as asked (e.g. a PFX without a password)."""


# --- the one door to versions: through the certificates the user may see


def _scoped(user):
    return CertificateVersion.objects.filter(certificate__in=access.scoped(Certificate, user)).select_related(
        "certificate")


def visible_versions(user):
    """Versions of the certificates panel.toolkit.access lets `user` see; their keys not even decrypted."""
    return _scoped(user).defer("private_key")


def get_version(user, pk, secret=False):
    """The version `pk` if `user` may see it, else 404. `secret=True` (the key is about to
    leave the panel) also requires `user` to own the certificate: not even an admin
    takes a customer's private key."""
    if secret:
        return get_object_or_404(_scoped(user).filter(certificate__owner=user), pk=pk)
    return get_object_or_404(visible_versions(user), pk=pk)


def history(certificate):
    """The certificate's versions, newest first, keys left encrypted in the database."""
    return certificate.versions.defer("private_key").order_by("-created_at", "-id")


def describe(version, certificate, now=None):
    """Sets what a history row shows: is_current, is_expired, can_revoke, reason_label."""
    now = now or timezone.now()
    version.is_current = version.pk == certificate.current_version_id
    version.is_expired = version.not_after <= now
    # An uploaded certificate has no ACME account here to sign a revocation with.
    version.can_revoke = version.revoked_at is None and not version.is_expired and not certificate.is_uploaded
    version.reason_label = reason_label(version.revocation_reason)
    return version


def sha256_fingerprint(cert_pem):
    """SHA-256 of the certificate as browsers show it: colon-separated upper-case hex.
    Empty if the stored text is not a PEM certificate."""
    try:
        digest = x509.load_pem_x509_certificate(cert_pem.encode()).fingerprint(hashes.SHA256())
    except ValueError:
        return ""
    return digest.hex(":").upper()


def reason_label(reason):
    if not reason:
        return ""
    return RevocationReason(reason).label if reason in RevocationReason.values else reason


# --- revocation


def revoke(version, reason=RevocationReason.UNSPECIFIED):
    """Revoke `version` at the CA with `reason`, then record when and why.

    Raises RevocationRefused if it is already revoked, AcmeError with the CA's own
    words if the CA refuses. A CA that says it was already revoked (another worker,
    another tool) counts as success.
    """
    if reason not in REASON_CODES:
        raise RevocationRefused(_("Unknown revocation reason “%(reason)s”.") % {"reason": reason})
    if version.revoked_at:
        raise RevocationRefused(_("This certificate was already revoked on %(at)s.")
                                % {"at": f"{version.revoked_at:%Y-%m-%d %H:%M} UTC"})
    certificate = Certificate.objects.select_related("account").get(pk=version.certificate_id)
    if certificate.is_uploaded:
        raise RevocationRefused(_("This certificate was uploaded, not issued through the panel: revoke it with "
                                  "the CA or tool that issued it."))
    try:
        accounts.client_for(certificate.account).revoke(version.cert_pem, REASON_CODES[reason])
    except AcmeError as exc:
        if exc.problem_type != "alreadyRevoked":
            raise
        log.info("certificate version %s was already revoked at the CA", version.pk)
    now = timezone.now()
    # Conditional: two revocations racing record the first one's reason and time.
    CertificateVersion.objects.filter(pk=version.pk, revoked_at__isnull=True).update(
        revoked_at=now, revocation_reason=reason)
    version.refresh_from_db(fields=["revoked_at", "revocation_reason"])
    log.info("certificate version %s (serial %s) revoked: %s", version.pk, version.serial, reason)
    return version


# --- export


@dataclass(frozen=True)
class ExportedFile:
    filename: str
    content_type: str
    content: bytes


def export(version, fmt, password=""):
    """The file for `fmt` (an ExportFormat value). A PFX needs a non-empty `password`.

    For the secret formats `version` must have been loaded with its key
    (get_version(..., secret=True)).
    """
    stem = _file_stem(version)
    if fmt == ExportFormat.CERT:
        return ExportedFile(f"{stem}.crt", "application/x-pem-file", _pem_text(version.cert_pem))
    if fmt == ExportFormat.FULLCHAIN:
        return ExportedFile(f"{stem}.fullchain.pem", "application/x-pem-file", _pem_text(version.chain_pem))
    if fmt == ExportFormat.PEM_KEY:
        return ExportedFile(f"{stem}.key", "application/x-pem-file", _pem_text(version.private_key))
    if fmt == ExportFormat.PFX:
        if not password:
            raise ExportRefused(_("A PFX file needs a password: give one to protect the private key inside it."))
        return ExportedFile(f"{stem}.pfx", "application/x-pkcs12", pfx_bytes(version, password))
    raise ExportRefused(_("Unknown format “%(format)s”; use one of: %(formats)s.")
                        % {"format": fmt, "formats": ", ".join(ExportFormat.values)})


def pfx_bytes(version, password):
    """PKCS#12 with the key, the leaf and its intermediates, encrypted with `password`."""
    key = serialization.load_pem_private_key(version.private_key.encode(), password=None)
    leaf = x509.load_pem_x509_certificate(version.cert_pem.encode())
    intermediates = [c for c in x509.load_pem_x509_certificates(version.chain_pem.encode()) if c != leaf]
    return pkcs12.serialize_key_and_certificates(
        name=version.certificate.domains[0].encode(), key=key, cert=leaf, cas=intermediates or None,
        encryption_algorithm=serialization.BestAvailableEncryption(password.encode()),
    )


def as_attachment(exported):
    """A download response nothing along the way may keep: streamed, attachment, never cached."""
    response = FileResponse(io.BytesIO(exported.content), as_attachment=True, filename=exported.filename,
                            content_type=exported.content_type)
    add_never_cache_headers(response)
    return response


def _file_stem(version):
    name = version.certificate.domains[0].replace("*", "wildcard")
    name = re.sub(r"[^A-Za-z0-9.-]", "_", name)
    serial = re.sub(r"[^0-9a-f]", "", version.serial.lower())[:12]
    return f"{name}-{serial or version.pk}"


def _pem_text(text):
    return (text.strip() + "\n").encode()
