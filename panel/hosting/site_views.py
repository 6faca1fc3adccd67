"""Site pages: the list, adding, editing and deleting a site, its page (with the certificate
tab certs.presentation fills), the HTTPS switch, the deploy status the page polls and the nginx
config preview.
Thin: access -> form -> one panel.hosting.sites call -> redirect or page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Case, OuterRef, Prefetch, Subquery, Value, When
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from certs import site_removal
from certs.forms.certificates import IssueCertificateForm, OneClickForm
from certs.models import Certificate, ChallengeType
from certs.presentation import site_certificate_tab, site_page_context, with_days_left
from panel.deployment.nginx import apply
from panel.deployment.nginx.upstream_names import unresolved_upstream_host
from panel.hosting import sites
from panel.hosting.forms import SiteDeleteForm, SiteForm
from panel.models import Site, SiteDomain
from panel.security import audit
from panel.toolkit import access, validation
from panel.toolkit.sorting import ListSorting, SortableColumn

SITES_PER_PAGE = 50

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
    # ?config=failed: the dashboard's link to the sites whose config nginx rejected.
    config = request.GET.get("config", "")
    config_filter = Site.ConfigStatus(config) if config in Site.ConfigStatus.values else None
    sorting = ListSorting(SITE_COLUMNS, request.GET.get("sort"), default="domain")
    newest_first = access.scoped(Certificate, request.user).for_list().order_by("-id")
    site_rows = access.scoped(Site, request.user).alias(certificate_expires=Subquery(
        newest_first.filter(site=OuterRef("pk")).values("current_version__not_after")[:1]
    ))
    if query:
        # A subquery, not a join: a site with several matching names is still one row, without DISTINCT.
        matching = SiteDomain.objects.filter(name__contains=validation.search_term(query)).values("site_id")
        site_rows = site_rows.filter(pk__in=matching)
    if config_filter:
        site_rows = site_rows.filter(config_status=config_filter)
    site_rows = sorting.order(site_rows).prefetch_related(
        Prefetch("certificates", queryset=newest_first, to_attr="newest")
    )
    page = Paginator(site_rows, SITES_PER_PAGE).get_page(request.GET.get("page"))
    for site in page:
        site.certificate = with_days_left(site.newest[0]) if site.newest else None
    return render(request, "panel/site_list.html", {
        "nav": "sites", "page": page, "q": query, "sorting": sorting, "columns": sorting.headers,
        "config_filter": config_filter,
    })


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
                             % {"name": validation.unicode_domain(site.primary_domain)})
            return redirect("ui:site-detail", pk=site.pk)
    return render(request, "panel/site_form.html", {"nav": "sites", "form": form})


@login_required
def site_detail(request, pk):
    site = access.get_owned(Site, request.user, pk=pk)
    return render(request, "panel/site_detail.html", site_page_context(
        request, site, IssueCertificateForm(request.user, site),
        one_click_form=OneClickForm(request.user, site)))


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
                             % {"name": validation.unicode_domain(site.primary_domain)})
            return redirect("ui:site-detail", pk=site.pk)
    return render(request, "panel/site_form.html", {"nav": "sites", "form": form, "site": site})


@login_required
def site_delete(request, pk):
    """GET asks for confirmation, listing the certificates only this site uses and asking what
    becomes of them; POST deletes the site and removes its vhost."""
    site = access.get_owned(Site, request.user, pk=pk)
    alone, shared, foreign = site_removal.certificates_of(site)
    form = SiteDeleteForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        choice = (alone and form.cleaned_data["certificates"]) or site_removal.KEEP
        refused = None
        try:
            revoked = sites.delete_site(site, choice)
        except site_removal.RevocationFailed as exc:  # the site is deleted all the same
            refused, revoked = exc, exc.revoked
        audit.record_revocations(request, revoked)
        messages.success(request, _("Site %(name)s deleted; nginx no longer serves it.")
                         % {"name": validation.unicode_domain(site.primary_domain)})
        if refused:
            messages.error(request, refused.failure.html(refused.lead()))
            messages.warning(request, site_removal.not_revoked_text(refused))
        elif alone and choice != site_removal.KEEP:
            messages.info(request, ngettext("Its certificate is no longer renewed.",
                                            "Its %(count)d certificates are no longer renewed.",
                                            len(alone)) % {"count": len(alone)})
        return redirect("ui:site-list")
    return render(request, "panel/site_delete.html", {
        "nav": "sites", "site": site, "form": form, "certificates": alone, "shared": shared,
        "foreign": foreign,
        "http01_renewals_fail": not access.is_admin(site.owner) and any(
            certificate.challenge == ChallengeType.HTTP01 for certificate in alone),
    })


@login_required
@require_POST
def site_force_https(request, pk):
    """The SSL tab's one-click switch: sets (not flips) the redirect, so a repeated click is harmless."""
    site = access.get_owned(Site, request.user, pk=pk)
    site.force_https = request.POST.get("force_https") == "on"
    sites.save_site(site)
    if site.force_https and site.serving_version() is None:
        # nginx redirects only once it serves a certificate (deployment/nginx/render.py).
        messages.success(request, _("Force HTTPS is on: HTTP will redirect to HTTPS once the site "
                                    "serves a certificate. Until then it answers over HTTP."))
    elif site.force_https:
        messages.success(request, _("HTTP now redirects to HTTPS; nginx is being configured."))
    else:
        messages.success(request, _("HTTP no longer redirects to HTTPS; nginx is being configured."))
    return redirect(site_certificate_tab(site.pk))


@login_required
def site_config_status(request, pk):
    """The site page's deploy status, polled while nginx is being configured
    (panel/_config_status.html)."""
    site = access.get_owned(Site, request.user, pk=pk)
    return render(request, "panel/_config_status.html", {
        "site": site, "oob": True, "upstream_unresolved": unresolved_upstream_host(site)})


@login_required
def site_config_preview(request, pk):
    """The nginx config tab's preview, loaded when the tab is opened: the vhost as it would be applied now."""
    site = access.get_owned(Site, request.user, pk=pk)
    return render(request, "panel/_nginx_config_preview.html",
                  {"site": site, "config_text": apply.preview_site_config(site)})
