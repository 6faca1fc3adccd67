"""User accounts and their roles, managed by admins (the Users pages)."""

import logging

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from panel.models import UserQuota
from panel.security import homes

log = logging.getLogger(__name__)


class Role:
    USER = "user"
    ADMIN = "admin"


def role_of(user):
    return Role.ADMIN if user.is_superuser else Role.USER


def create_user(username, password, role):
    """The new account, with its home directory (panel.security.homes) when it can be made; else
    the first site or install target that needs it makes it."""
    user = get_user_model().objects.create_user(username, password=password, is_superuser=role == Role.ADMIN,
                                                is_staff=role == Role.ADMIN)
    try:
        homes.ensure_home(user)
    except OSError as exc:
        log.warning("could not create the home of user %s: %s", user.pk, exc)
    return user


def update_user(acting_admin, user, role, is_active, max_sites, max_certificates, granted_roots=None):
    """Set a user's role, active flag, quotas and, unless None, granted directories (validated:
    panel.security.homes.clean_grants). An admin cannot demote or lock out themselves: the panel
    would be left without the admin who is using it."""
    if user.pk == acting_admin.pk and (role != Role.ADMIN or not is_active):
        raise ValidationError(_("You cannot remove your own administrator role or deactivate yourself; "
                                "another administrator can."))
    with transaction.atomic():
        user.is_superuser = user.is_staff = role == Role.ADMIN
        user.is_active = is_active
        user.save(update_fields=["is_superuser", "is_staff", "is_active"])
        UserQuota.objects.update_or_create(user=user, defaults={"max_sites": max_sites,
                                                                "max_certificates": max_certificates})
        if granted_roots is not None:
            homes.set_grants(user, granted_roots)
    return user
