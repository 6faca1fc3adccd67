"""Pages of the hosting side: dashboard, sites, API tokens, the audit log.

Thin: access -> form -> one service call -> redirect or page."""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Case, F, OuterRef, Prefetch, Subquery, Value, When
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views import defaults
from django.views.decorators.http import require_POST

from certs.health import Health, health_counts, health_filter
from certs.models import Certificate, Order
from certs.presentation import site_certificate_tab, site_page_context, with_days_left
from certs.expiry import UPCOMING_EXPIRY_BUCKETS, expiry_bucket_counts, expiry_chart
from certs.forms.certificates import IssueCertificateForm
from panel.deployment.nginx import apply
from panel.forms import ApiTokenForm, AuditFilterForm, SiteForm
from panel.hosting import sites
from panel.models import AuditEntry, Site, SiteDomain
from panel.security import audit, tokens
from panel.toolkit import access, clock, validation
from panel.toolkit.sorting import ListSorting, SortableColumn

SITES_PER_PAGE = 50
DASHBOARD_FAILURES = 10
DASHBOARD_ORDERS = 10

SITE_COLUMNS = (
    SortableColumn("domain", _lazy("Domains"), ("primary_domain",)),
    # Rejected configs first: they are what needs attention.
    SortableColumn("config", _lazy("nginx config"), (Case(
        When(config_status=Site.ConfigStatus.FAILED, then=Value(0)),
        When(config_status=Site.ConfigStatus.PENDING, then=Value(1)),
        default=Value(2),
    ),)),
    # The site's certificate is its newest one (as shown): soonest expiry first, none last.
    SortableColumn("expires", _lazy("Certificate"), ("certificate_expires",)),
    SortableColumn("created", _lazy("Added"), ("created_at",)),
)


@login_required
def site_list(request):
    query = request.GET.get("q", "").strip()
    sorting = ListSorting(SITE_COLUMNS, request.GET.get("sort"), default="domain")
    newest_first = access.scoped(Certificate, request.user).for_list().order_by("-id")
    site_rows = access.scoped(Site, request.user).alias(certificate_expires=Subquery(
        newest_first.filter(site=OuterRef("pk")).values("current_version__not_after")[:1]
    ))
    if query:
        # A subquery, not a join: a site with several matching names is still one row, without DISTINCT.
        matching = SiteDomain.objects.filter(name__contains=validation.search_term(query)).values("site_id")
        site_rows = site_rows.filter(pk__in=matching)
    site_rows = sorting.order(site_rows).prefetch_related(
        Prefetch("certificates", queryset=newest_first, to_attr="newest")
    )
    page = Paginator(site_rows, SITES_PER_PAGE).get_page(request.GET.get("page"))
    for site in page:
        site.certificate = with_days_left(site.newest[0]) if site.newest else None
    return render(request, "panel/site_list.html",
                  {"nav": "sites", "page": page, "q": query, "sorting": sorting, "columns": sorting.headers})


@login_required
def site_add(request):
    form = SiteForm(request.POST if request.method == "POST" else None, user=request.user)
    if form.is_valid():
        site = Site(owner=request.user, **form.cleaned_data)
        try:
            sites.save_site(site)
        except ValidationError as exc:  # a name another site took in the meantime, or the site quota
            form.add_error(None, exc)
        else:
            messages.success(request, _("Site %(name)s added; nginx is being configured for it.")
                             % {"name": site.primary_domain})
            return redirect("ui:site-detail", pk=site.pk)
    return render(request, "panel/site_form.html", {"nav": "sites", "form": form})


@login_required
def site_detail(request, pk):
    site = access.get_owned(Site, request.user, pk=pk)
    return render(request, "panel/site_detail.html",
                  site_page_context(request, site, IssueCertificateForm(request.user, site)))


@login_required
def dashboard(request):
    """Counts, the expiry chart, what is failing (most urgent first) and recent orders: a
    fixed number of queries however many sites and certificates there are."""
    now = clock.now()  # the renewal sweep's clock, as on the renewals page
    certificate_rows = access.scoped(Certificate, request.user)
    counts = certificate_rows.order_by().aggregate(**health_counts(now),
                                                   **expiry_bucket_counts(UPCOMING_EXPIRY_BUCKETS, now))
    failures = (
        certificate_rows.filter(health_filter(Health.FAILING, now)).for_list().select_related("site")
        .order_by(F("current_version__not_after").asc(nulls_last=True), "-id")[:DASHBOARD_FAILURES]
    )
    recent_orders = (
        access.scoped(Order, request.user).select_related("certificate")
        .defer("private_key", "csr_pem").order_by("-id")[:DASHBOARD_ORDERS]
    )
    return render(request, "panel/dashboard.html", {
        "nav": "dashboard",
        "site_count": access.scoped(Site, request.user).count(),
        "counts": counts,
        "expiring_days": settings.EXPIRY_ALERT_DAYS,
        "chart": expiry_chart(counts, UPCOMING_EXPIRY_BUCKETS),
        "failures": [with_days_left(certificate) for certificate in failures],
        "recent_orders": recent_orders,
    })


@login_required
def site_edit(request, pk):
    site = access.get_owned(Site, request.user, pk=pk)
    form = SiteForm(request.POST if request.method == "POST" else None, site=site, user=request.user)
    if form.is_valid():
        for field, value in form.cleaned_data.items():
            setattr(site, field, value)
        try:
            sites.save_site(site)
        except ValidationError as exc:  # a name another site took in the meantime
            site.refresh_from_db()
            form.add_error(None, exc)
        else:
            messages.success(request, _("Site %(name)s saved; nginx is being configured with the changes.")
                             % {"name": site.primary_domain})
            return redirect("ui:site-detail", pk=site.pk)
    return render(request, "panel/site_form.html", {"nav": "sites", "form": form, "site": site})


@login_required
def site_delete(request, pk):
    """GET asks for confirmation; POST deletes the site and removes its vhost."""
    site = access.get_owned(Site, request.user, pk=pk)
    if request.method == "POST":
        sites.delete_site(site)
        messages.success(request, _("Site %(name)s deleted; nginx no longer serves it.")
                         % {"name": site.primary_domain})
        return redirect("ui:site-list")
    return render(request, "panel/site_delete.html",
                  {"nav": "sites", "site": site, "certificate_count": site.certificates.count()})


@login_required
@require_POST
def site_force_https(request, pk):
    """The SSL tab's one-click switch: sets (not flips) the redirect, so a repeated click is harmless."""
    site = access.get_owned(Site, request.user, pk=pk)
    site.force_https = request.POST.get("force_https") == "on"
    sites.save_site(site)
    if site.force_https:
        messages.success(request, _("HTTP now redirects to HTTPS; nginx is being configured."))
    else:
        messages.success(request, _("HTTP no longer redirects to HTTPS; nginx is being configured."))
    return redirect(site_certificate_tab(site.pk))


@login_required
def site_config_preview(request, pk):
    """The nginx config tab's preview, loaded when the tab is opened: the vhost as it would be applied now."""
    site = access.get_owned(Site, request.user, pk=pk)
    return render(request, "panel/_nginx_config_preview.html",
                  {"site": site, "config_text": apply.preview_site_config(site)})


# --- API tokens: the user's own, under the user menu


@login_required
def token_list(request):
    """The user's tokens and a form for a new one. The new key is shown in the answer to the
    POST that made it and never again: it is not stored anywhere it could be shown from."""
    form = ApiTokenForm(request.POST if request.method == "POST" else None)
    new_token = new_key = None
    if form.is_valid():
        data = form.cleaned_data
        new_token, new_key = tokens.issue_token(request.user, data["name"], data["scope"], data["expires_in_days"])
        form = ApiTokenForm()
    response = render(request, "panel/token_list.html", {
        "nav": "tokens", "form": form, "tokens": tokens.own_tokens(request.user),
        "new_token": new_token, "new_key": new_key,
    })
    add_never_cache_headers(response)
    return response


@login_required
def token_revoke(request, pk):
    """GET asks for confirmation; POST revokes."""
    token = get_object_or_404(tokens.own_tokens(request.user), pk=pk)
    if request.method == "POST":
        if tokens.revoke_token(token):
            audit.record(request, audit.Action.REVOKE, token)
        messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
        return redirect("ui:token-list")
    return render(request, "panel/token_revoke.html", {"nav": "tokens", "token": token})


# --- the audit log: administrators only

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


def not_found(request, exception):
    """A path no URL pattern takes (e.g. /api/v1/sites/abc/): JSON for the API, as its
    schema promises, the HTML page for people."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": _("Not found.")}, status=404)
    return defaults.page_not_found(request, exception)
