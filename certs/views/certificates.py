"""Certificate pages: the list, requesting one (for a site, or for a server the panel does not
manage), uploading one, its own page, renewing and re-issuing it."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Case, TextField, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_POST

from certs import certificates, orders, problems, upload
from certs.acme import AcmeError
from certs.forms.certificates import (ExternalCertificateForm, IssueCertificateForm, OneClickForm,
                                      UploadCertificateForm)
from certs.health import Health, health_filter
from certs.models import Certificate, ChallengeType, KeyType
from certs.presentation import (back_to_site_or, certificate_page_context, owned_certificate, site_certificate_tab,
                                site_page_context, with_days_left)
from panel.models import Site
from panel.toolkit import access, clock, validation
from panel.toolkit.access import admin_required
from panel.toolkit.sorting import ListSorting, SortableColumn

CERTIFICATES_PER_PAGE = 50


def _ssl_tab_again(request, site, issue_form=None, one_click_form=None):
    """The site page with the SSL tab open, showing the form that was sent with its errors."""
    issue_form = issue_form or IssueCertificateForm(request.user, site)
    one_click_form = one_click_form or OneClickForm(request.user, site)
    return render(request, "panel/site_detail.html", site_page_context(
        request, site, issue_form, open_tab="certificate", one_click_form=one_click_form))


@login_required
@require_POST
def issue_certificate(request, site_pk):
    site = access.get_owned(Site, request.user, pk=site_pk)
    form = IssueCertificateForm(request.user, site, request.POST)
    if not form.is_valid():
        return _ssl_tab_again(request, site, issue_form=form)
    data = form.cleaned_data
    try:
        certificates.request_certificate(
            request.user, data["account"], data["domains"], data["key_type"], data["challenge"], site,
            data["dns_credential"], data["challenge_alias"], names_for_site=form.names_for_site)
    except ValidationError as exc:  # the certificate quota is used up, or the name was just taken
        site.refresh_from_db()
        form.add_error(None, exc.messages)
        return _ssl_tab_again(request, site, issue_form=form)
    messages.success(request, _("Certificate requested; the order's progress is shown below."))
    return redirect(site_certificate_tab(site.pk))


@login_required
@require_POST
def issue_in_one_click(request, site_pk):
    """The SSL tab's one click: an account at the administrator's default CA (registered now if
    the user has none there), then a certificate for the site's names."""
    site = access.get_owned(Site, request.user, pk=site_pk)
    form = OneClickForm(request.user, site, request.POST)
    if form.ca is None:
        messages.error(request, _("No certificate authority is set for one-click certificates: add "
                                  "an ACME account, or ask an administrator to choose one on the "
                                  "Settings page."))
        return redirect(site_certificate_tab(site.pk))
    if not form.is_valid():
        return _ssl_tab_again(request, site, one_click_form=form)
    data = form.cleaned_data
    try:
        certificates.request_with_account_at(request.user, form.ca, data["email"], data["domains"],
                                             KeyType.EC256, ChallengeType.HTTP01, site)
    except AcmeError as exc:
        failure = problems.from_acme(exc, form.ca.directory_url)
        form.add_error(None, failure.html(_("The account was not registered.")))
        return _ssl_tab_again(request, site, one_click_form=form)
    except ValidationError as exc:  # the certificate quota is used up
        form.add_error(None, exc.messages)
        return _ssl_tab_again(request, site, one_click_form=form)
    messages.success(request, _("Registered at %(ca)s; certificate requested, the order's progress "
                                "is shown below.") % {"ca": form.ca.label})
    return redirect(site_certificate_tab(site.pk))


def _start_order(request, certificate, started_message, is_renewal=False):
    """Start an order and say so, or say that one is already running."""
    try:
        orders.start_order(certificate, is_renewal=is_renewal, asked_by_user=True)
    except IntegrityError:
        messages.warning(request, _("An order for this certificate is already running."))
    except (orders.NotOrderable, orders.NamesNotOwned) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, started_message)


@login_required
@require_POST
def renew_certificate(request, pk):
    certificate = access.get_owned(Certificate, request.user, pk=pk)
    # A renewal once there is a version to renew; before that, the button says "Try again".
    _start_order(request, certificate, _("Renewal started."),
                 is_renewal=certificate.current_version_id is not None)
    return back_to_site_or(request, certificate, "ui:certificate-list")


@login_required
@require_POST
def reissue_certificate(request, pk):
    """A new order (with a new key) for the same names: after a revocation, or any time."""
    certificate = access.get_owned(Certificate, request.user, pk=pk)
    _start_order(request, certificate, _("Re-issue started: a new certificate with a new key is being ordered."))
    return back_to_site_or(request, certificate, "ui:certificate-detail", pk=certificate.pk)


CERTIFICATE_COLUMNS = (
    SortableColumn("name", _lazy("Names"), (KT("domains__0"),)),
    # Failures first, then those being issued; within a status, soonest expiry first.
    SortableColumn("status", _lazy("Status"), (Case(
        When(status=Certificate.Status.FAILED, then=Value(0)),
        When(status=Certificate.Status.PENDING, then=Value(1)),
        default=Value(2),
    ), "current_version__not_after")),
    SortableColumn("expires", _lazy("Days left"), ("current_version__not_after",)),
    SortableColumn("created", _lazy("Added"), ("created_at",)),
)


@login_required
def certificate_list(request):
    query = request.GET.get("q", "").strip()
    sorting = ListSorting(CERTIFICATE_COLUMNS, request.GET.get("sort"), default="-created")
    certificate_rows = access.scoped(Certificate, request.user).for_list().select_related("site")
    health = request.GET.get("status")  # the dashboard's counts link here: ?status=valid|expiring|failing
    health = Health(health) if health in Health.values else None
    if health:
        certificate_rows = certificate_rows.filter(health_filter(health, clock.now()))
    if query:
        # The names are a JSON list; its text holds every name, quoted.
        certificate_rows = certificate_rows.alias(names_text=Cast("domains", TextField())).filter(
            names_text__contains=validation.search_term(query))
    page = Paginator(sorting.order(certificate_rows), CERTIFICATES_PER_PAGE).get_page(request.GET.get("page"))
    for certificate in page:
        with_days_left(certificate)
    return render(request, "certs/certificate_list.html", {
        "nav": "certificates", "page": page, "q": query, "health": health, "sorting": sorting,
        "columns": sorting.headers, "is_admin": access.is_admin(request.user),
    })


@admin_required
def certificate_issue_external(request):
    """A certificate for a server the panel does not manage."""
    form = ExternalCertificateForm(request.user, request.POST or None)
    if form.is_valid():
        data = form.cleaned_data
        try:
            certificate = certificates.request_certificate(
                request.user, data["account"], data["domains"], data["key_type"], data["challenge"],
                dns_credential=data["dns_credential"], webroot=data["webroot"],
                server_config=data["server_config"])
        except ValidationError as exc:  # the certificate quota is used up
            form.add_error(None, exc)
        else:
            messages.success(request, _("Certificate requested; the order's progress is shown below."))
            return redirect("ui:certificate-detail", pk=certificate.pk)
    return render(request, "certs/certificate_issue_external.html", {"nav": "certificates", "form": form})


@login_required
def certificate_upload(request):
    """A certificate issued elsewhere, with its key; ?site=<id> preselects the site to attach it to."""
    initial = {}
    if request.method != "POST" and request.GET.get("site"):
        site_id = request.GET["site"]
        if not site_id.isdigit():
            raise Http404
        initial["site"] = get_object_or_404(upload.attachable_sites(request.user), pk=site_id)
    form = UploadCertificateForm(request.user, request.POST or None, request.FILES or None, initial=initial)
    if form.is_valid():
        data = form.cleaned_data
        try:
            certificate = upload.store_upload(request.user, data["upload"], data["site"])
        except ValidationError as exc:  # the certificate quota is used up
            form.add_error(None, exc)
        else:
            messages.success(request, _("Certificate for %(names)s uploaded.")
                             % {"names": ", ".join(map(validation.unicode_domain,
                                                       certificate.domains))})
            return back_to_site_or(request, certificate, "ui:certificate-detail", pk=certificate.pk)
    return render(request, "certs/certificate_upload.html", {"nav": "certificates", "form": form})


@login_required
def certificate_detail(request, pk):
    return render(request, "certs/certificate_detail.html",
                  certificate_page_context(request, owned_certificate(request, pk)))
