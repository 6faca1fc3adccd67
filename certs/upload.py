"""Uploading a certificate issued elsewhere: checked, then stored and served like an issued one.

The PEM text of the certificate (the leaf, optionally followed by its chain), an optional
separate chain and the private key are checked before anything is stored; every problem
found is reported at once, keyed by the field it is about ("certificate", "chain",
"private_key", "site"). Password-protected keys are refused: the key must be stored
(encrypted with the panel's own keys) and handed to nginx in the clear, so a password the
panel would have to keep adds nothing.

An uploaded certificate has no ACME account: it is never renewed or revoked by the panel,
but expiry alerts still warn about it.
"""

import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from certs.models import Certificate, CertificateVersion, KeyType
from panel.deployment import dispatch
from panel.models import Site
from panel.security import quotas
from panel.toolkit import access, validation
from panel.toolkit.pem import same_public_key

MAX_CERTIFICATE_CHARS = 64 * 1024  # a leaf and a long chain fit several times over
MAX_KEY_CHARS = 16 * 1024  # an RSA 4096 key in PEM is about 3,300 characters

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


@dataclass(frozen=True)
class CheckedUpload:
    """What passed every check: the leaf, its chain (issuer after issuer) and the key."""

    leaf: x509.Certificate
    chain: list
    private_key: object
    key_type: str
    domains: list


class _Errors(dict):
    """field -> messages, raised together as one ValidationError."""

    def add(self, field, message):
        self.setdefault(field, []).append(message)

    def raise_if_any(self):
        if self:
            raise ValidationError(dict(self))


def attachable_sites(user):
    """The sites `user` may attach an upload to: their own, even for an administrator, so a
    site never serves a certificate its owner cannot see."""
    return access.scoped(Site, user).filter(owner=user)


def check_upload(owner, certificate_text, chain_text, key_text, site=None, require_current=True) -> CheckedUpload:
    """Parse and check an upload; raises ValidationError keyed by field with every problem found.

    require_current=False (an import from another ACME client): an expired certificate passes,
    because the panel renews it at once rather than leave it behind."""
    errors = _Errors()
    certificates = _parse_certificates(certificate_text, "certificate", errors, required=True)
    chain = _parse_certificates(chain_text, "chain", errors, required=False)
    private_key = _parse_private_key(key_text, errors)
    errors.raise_if_any()

    leaf, chain = certificates[0], _without_repeats(certificates[1:] + chain, certificates[0])
    if not same_public_key(leaf.public_key(), private_key.public_key()):
        errors.add("private_key", _("This private key does not belong to the certificate: their public keys "
                                    "differ."))
    key_type = _key_type(private_key, errors)
    _check_chain_order([leaf] + chain, "chain" if chain_text and chain_text.strip() else "certificate", errors)
    if require_current:
        _check_dates(leaf, errors)
    domains = _names(leaf, errors)
    if site is not None and domains:
        _check_site(owner, site, domains, errors)
    errors.raise_if_any()
    return CheckedUpload(leaf=leaf, chain=chain, private_key=private_key, key_type=key_type, domains=domains)


def store_upload(owner, upload: CheckedUpload, site=None) -> Certificate:
    """Store a checked upload as a valid certificate with one version; if it is for a site,
    the site is re-applied once this commits, so nginx serves it. Raises ValidationError when
    the owner's certificate quota is used up."""
    with transaction.atomic():
        quotas.check_room_for_certificate(owner)
        certificate = Certificate.objects.create(
            owner=owner, site=site, account=None, source=Certificate.Source.UPLOADED, domains=upload.domains,
            key_type=upload.key_type, status=Certificate.Status.VALID,
        )
        version = store_version(certificate, upload)
        certificate.current_version = version
        certificate.save(update_fields=["current_version"])
        dispatch.put_in_service(certificate)
    return certificate


def store_version(certificate, upload: CheckedUpload) -> CertificateVersion:
    """The checked files as a version of `certificate` (the key encrypted at rest, like any other)."""
    leaf, pem = upload.leaf, serialization.Encoding.PEM
    return CertificateVersion.objects.create(
        certificate=certificate, order=None, cert_pem=leaf.public_bytes(pem).decode(),
        chain_pem="".join(cert.public_bytes(pem).decode() for cert in [leaf] + upload.chain),
        private_key=upload.private_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()).decode(),
        serial=format(leaf.serial_number, "x"), issuer=leaf.issuer.rfc4514_string(),
        not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
    )


# --- the checks


def _parse_certificates(text, field, errors, required):
    """The certificates of `text`, in order; a block that does not parse is named by its number."""
    text = text or ""
    blocks = _pem_blocks(text)
    if not blocks:
        if required or text.strip():
            errors.add(field, _("No certificate found: paste the PEM text, from -----BEGIN CERTIFICATE----- to "
                                "-----END CERTIFICATE-----."))
        return []
    certificates = []
    for number, (label, block) in enumerate(blocks, start=1):
        if label != "CERTIFICATE":
            errors.add(field, _("Block %(number)d is a “%(label)s”, not a CERTIFICATE.")
                       % {"number": number, "label": label})
            continue
        try:
            certificates.append(x509.load_pem_x509_certificate(block.encode()))
        except ValueError:
            errors.add(field, _("Certificate %(number)d cannot be read: its PEM text is damaged or cut short.")
                       % {"number": number})
    if text.count("-----BEGIN") > len(blocks):
        errors.add(field, _("A certificate starts with -----BEGIN but has no matching -----END line."))
    return certificates


def _parse_private_key(text, errors):
    blocks = _pem_blocks(text or "")
    if len(blocks) != 1 or "PRIVATE KEY" not in blocks[0][0]:
        errors.add("private_key", _("Paste exactly one private key in PEM, from -----BEGIN PRIVATE KEY----- "
                                    "(or RSA / EC PRIVATE KEY) to its -----END line."))
        return None
    try:
        return serialization.load_pem_private_key(blocks[0][1].encode(), password=None)
    except TypeError:  # cryptography's way of saying "encrypted, and no password given"
        errors.add("private_key", _("This private key is protected by a password. Remove the password first, "
                                    "e.g. with “openssl pkey -in key.pem -out key-plain.pem”, and upload that."))
    except (ValueError, UnsupportedAlgorithm):
        errors.add("private_key", _("The private key cannot be read: its PEM text is damaged or cut short."))
    return None


def _key_type(private_key, errors):
    key_type = KeyType.of_key(private_key)
    if key_type is not None:
        return key_type
    errors.add("private_key", _("Only RSA 2048, 3072 or 4096 and EC P-256 or P-384 keys are supported."))
    return None


def _without_repeats(chain, leaf):
    """The chain without the leaf or a certificate given twice (a full chain pasted into both fields)."""
    kept = []
    for cert in chain:
        if cert != leaf and cert not in kept:
            kept.append(cert)
    return kept


def _check_chain_order(certificates, field, errors):
    """Each certificate must be issued (name and signature) by the one after it."""
    for number, (cert, issuer) in enumerate(zip(certificates, certificates[1:]), start=1):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            errors.add(field, _("The chain is not in order: certificate %(number)d (%(subject)s) is not issued "
                                  "by the next one (%(next)s). Give the leaf first, then its issuer, then that "
                                  "one's issuer.")
                       % {"number": number, "subject": cert.subject.rfc4514_string(),
                          "next": issuer.subject.rfc4514_string()})
            return


def _check_dates(leaf, errors):
    now = timezone.now()
    if leaf.not_valid_after_utc <= now:
        errors.add("certificate", _("This certificate expired on %(at)s UTC.")
                   % {"at": f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M}"})
    elif leaf.not_valid_before_utc > now:
        errors.add("certificate", _("This certificate is not valid yet: it starts on %(at)s UTC.")
                   % {"at": f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M}"})


def _names(leaf, errors):
    """The DNS names of the leaf's subjectAltName, as the panel stores names."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not names:
        errors.add("certificate", _("This certificate names no domain: browsers only accept the names in its "
                                    "Subject Alternative Name extension, and it has none."))
        return []
    try:
        return validation.normalize_domain_list(names)
    except ValidationError as exc:
        for message in exc.messages:
            errors.add("certificate", message)
        return []


def _check_site(owner, site, domains, errors):
    if site.owner_id != owner.pk:
        errors.add("site", _("A certificate can only be attached to one of your own sites."))
        return
    uncovered = [name for name in site.domains if not any(validation.name_covers(c, name) for c in domains)]
    if uncovered:
        errors.add("site", _("This certificate does not cover these names of the site: %(names)s.")
                   % {"names": ", ".join(uncovered)})


def _pem_blocks(text):
    """(label, whole block text) of every PEM block in `text`; text around them is ignored."""
    return [(match.group(1), match.group(0)) for match in _PEM_BLOCK.finditer(text.replace("\r\n", "\n"))]
