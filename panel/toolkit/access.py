"""The one door to data: every lookup is scoped to the requesting user.

A user sees only what they own; an admin sees everything. A foreign id is simply
not in the user's queryset, so it answers 404 like an id that does not exist.

Roles: an admin is a superuser (is_admin below is the one definition); everyone
else is a user. Admin-only pages and API writes check is_admin through
admin_required and IsAdminOrReadOnly.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import get_object_or_404
from rest_framework.permissions import SAFE_METHODS, BasePermission


def is_admin(user):
    return user.is_authenticated and user.is_active and user.is_superuser


def scoped(model, user):
    queryset = model.objects.all()
    if not user.is_authenticated:
        return queryset.none()
    return queryset if is_admin(user) else queryset.filter(owner=user)


def scoped_or_shared(model, user):
    """What `user` may pick from (reload presets): their own, and what an administrator offers
    to everyone (`shared`, on a row an administrator owns or nobody does). An admin sees all."""
    queryset = scoped(model, user)
    if not user.is_authenticated or is_admin(user):
        return queryset
    offered = Q(shared=True) & (Q(owner__isnull=True) | Q(owner__is_superuser=True))
    return model.objects.filter(Q(owner=user) | offered)


def get_owned(model, user, **lookup):
    return get_object_or_404(scoped(model, user), **lookup)


def admin_required(view):
    """A page for admins only: others get 403 (the page exists, it is just not theirs)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_admin(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


class IsAdminOrReadOnly(BasePermission):
    """API: everyone signed in reads; only admins write (presets users pick from)."""

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or is_admin(request.user)
