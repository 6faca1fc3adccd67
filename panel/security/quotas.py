"""Per-user limits on sites and certificates (panel.models.UserQuota), checked where those are created."""

from django.core.exceptions import ValidationError
from django.utils.translation import ngettext

from certs.models import Certificate
from panel.models import Site, UserQuota


def _limit(owner, field):
    # Locks the quota row until the caller's transaction ends, so two requests at once
    # cannot both take the last place. Must run inside transaction.atomic().
    quota = UserQuota.objects.select_for_update().filter(user=owner).first()
    return getattr(quota, field) if quota else None


def check_room_for_site(owner):
    limit = _limit(owner, "max_sites")
    if limit is not None and Site.objects.filter(owner=owner).count() >= limit:
        raise ValidationError(ngettext(
            "The limit of %(limit)d site for this account is reached: delete one or ask an administrator to "
            "raise the limit.",
            "The limit of %(limit)d sites for this account is reached: delete one or ask an administrator to "
            "raise the limit.", limit) % {"limit": limit})


def check_room_for_certificate(owner):
    limit = _limit(owner, "max_certificates")
    if limit is not None and Certificate.objects.filter(owner=owner).count() >= limit:
        raise ValidationError(ngettext(
            "The limit of %(limit)d certificate for this account is reached: ask an administrator to raise "
            "the limit.",
            "The limit of %(limit)d certificates for this account is reached: ask an administrator to raise "
            "the limit.", limit) % {"limit": limit})
