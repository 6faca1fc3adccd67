"""The audit log page: administrators only."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from panel.models import AuditEntry
from panel.security.forms import AuditFilterForm
from panel.toolkit import access

AUDIT_ENTRIES_PER_PAGE = 100


def _staff_only(view):
    """Anyone else gets the same 404 as for a page that does not exist."""
    @wraps(view)
    def checked(request, *args, **kwargs):
        if not access.is_admin(request.user):
            raise Http404
        return view(request, *args, **kwargs)
    return login_required(checked)


@_staff_only
def audit_log(request):
    form = AuditFilterForm(request.GET or None)
    entries = AuditEntry.objects.all()  # actor_label is stored: the page needs no join, whatever its size
    if form.is_valid():
        entries = form.filter(entries)
    page = Paginator(entries, AUDIT_ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "panel/audit_log.html", {"nav": "audit", "form": form, "page": page})
