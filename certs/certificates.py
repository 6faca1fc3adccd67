"""Requesting a certificate: the rules, and the one way to create one (UI and API)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from certs import orders
from certs.models import Certificate, ChallengeType
from panel import validation


def clean_request(domains, challenge, site=None):
    """The validated names for a certificate; raises ValidationError keyed by field."""
    try:
        names = validation.normalize_domain_list(domains)
    except ValidationError as exc:
        raise ValidationError({"domains": exc.messages})
    if challenge == ChallengeType.HTTP01 and any(name.startswith("*.") for name in names):
        raise ValidationError({"domains": [_("Wildcard names can only be validated with DNS-01.")]})
    if site is not None:
        foreign = [name for name in names if name not in site.domains]
        if foreign:
            raise ValidationError({"domains": [_("Not names of this site: %(names)s") % {"names": ", ".join(foreign)}]})
    return names


def request_certificate(owner, account, domains, key_type, challenge=ChallengeType.HTTP01, site=None) -> Certificate:
    """Store the certificate and queue its first order, together or not at all."""
    with transaction.atomic():
        certificate = Certificate.objects.create(owner=owner, account=account, domains=domains, key_type=key_type,
                                                 challenge=challenge, site=site)
        orders.start_order(certificate)
    return certificate
