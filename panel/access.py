"""The one door to data: every lookup is scoped to the requesting user.

A user sees only what they own; an admin sees everything. A foreign id is simply
not in the user's queryset, so it answers 404 like an id that does not exist.
"""

from django.shortcuts import get_object_or_404


def scoped(model, user):
    queryset = model.objects.all()
    if not user.is_authenticated:
        return queryset.none()
    return queryset if user.is_superuser else queryset.filter(owner=user)


def get_owned(model, user, **lookup):
    return get_object_or_404(scoped(model, user), **lookup)
