"""User accounts and their roles, managed by admins (the Users pages)."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from panel.models import UserQuota


class Role:
    USER = "user"
    ADMIN = "admin"


def role_of(user):
    return Role.ADMIN if user.is_superuser else Role.USER


def create_user(username, password, role):
    return get_user_model().objects.create_user(username, password=password, is_superuser=role == Role.ADMIN,
                                                is_staff=role == Role.ADMIN)


def update_user(acting_admin, user, role, is_active, max_sites, max_certificates):
    """Set a user's role, active flag and quotas. An admin cannot demote or lock out
    themselves: the panel would be left without the admin who is using it."""
    if user.pk == acting_admin.pk and (role != Role.ADMIN or not is_active):
        raise ValidationError(_("You cannot remove your own administrator role or deactivate yourself; "
                                "another administrator can."))
    with transaction.atomic():
        user.is_superuser = user.is_staff = role == Role.ADMIN
        user.is_active = is_active
        user.save(update_fields=["is_superuser", "is_staff", "is_active"])
        UserQuota.objects.update_or_create(user=user, defaults={"max_sites": max_sites,
                                                                "max_certificates": max_certificates})
    return user
