"""Admin-only pages: user accounts, their roles and quotas. Thin: access -> form -> panel.security.users."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from panel.security.forms import UserCreateForm, UserEditForm
from panel.models import UserQuota
from panel.security import homes, users
from panel.toolkit.access import admin_required

USERS_PER_PAGE = 50


@admin_required
def user_list(request):
    rows = get_user_model().objects.order_by("username").annotate(
        site_count=Count("sites", distinct=True), certificate_count=Count("certificates", distinct=True),
        max_sites=F("quota__max_sites"), max_certificates=F("quota__max_certificates"))
    page = Paginator(rows, USERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "panel/user_list.html", {"nav": "users", "page": page})


@admin_required
def user_add(request):
    form = UserCreateForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        data = form.cleaned_data
        user = users.create_user(data["username"], data["password"], data["role"])
        messages.success(request, _("User %(name)s created.") % {"name": user.username})
        return redirect("ui:user-edit", pk=user.pk)
    return render(request, "panel/user_form.html", {"nav": "users", "form": form})


@admin_required
def user_edit(request, pk):
    user = get_object_or_404(get_user_model(), pk=pk)
    quota = UserQuota.objects.filter(user=user).first()
    initial = {"role": users.role_of(user), "is_active": user.is_active,
               "max_sites": quota.max_sites if quota else None,
               "max_certificates": quota.max_certificates if quota else None,
               "granted_roots": "\n".join(map(str, homes.granted_roots(user)))}
    form = UserEditForm(request.POST if request.method == "POST" else None, initial=initial,
                        home=homes.home_of(user))
    if form.is_valid():
        data = form.cleaned_data
        try:
            users.update_user(request.user, user, data["role"], data["is_active"], data["max_sites"],
                              data["max_certificates"], granted_roots=data["granted_roots"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("User %(name)s saved.") % {"name": user.username})
            return redirect("ui:user-list")
    return render(request, "panel/user_form.html", {"nav": "users", "form": form, "edited": user})
