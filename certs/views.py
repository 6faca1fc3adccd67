"""Pages of the certificate side: certificates, orders, ACME accounts.

Thin: access -> form -> one service call (certs.orders, certs.accounts) -> redirect or page.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Count
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from certs import accounts, cas, certificates, orders
from certs.acme import AcmeError
from certs.forms import AcmeAccountForm, IssueCertificateForm
from certs.models import AcmeAccount, Certificate, ChallengeType, Order
from panel import access
from panel.models import Site

CERTIFICATES_PER_PAGE = 50


def with_days_left(certificate):
    """Sets certificate.days_left: whole days until the current version expires (negative once
    expired), or None before the first issuance."""
    version = certificate.current_version
    certificate.days_left = (version.not_after - timezone.now()).days if version else None
    return certificate


def site_page_context(request, site, issue_form=None):
    """Everything the site page shows; the issue view re-renders it with its form's errors."""
    certificate = access.scoped(Certificate, request.user).filter(site=site).with_current_version().first()
    return {
        "nav": "sites",
        "site": site,
        "certificate": with_days_left(certificate) if certificate else None,
        "order": certificate.latest_order() if certificate else None,
        "issue_form": issue_form or IssueCertificateForm(request.user, site),
        "has_accounts": access.scoped(AcmeAccount, request.user).filter(status=AcmeAccount.Status.VALID).exists(),
        "challenge_label": ChallengeType.HTTP01.label,
    }


def _site_page(site_id):
    return reverse("ui:site-detail", kwargs={"pk": site_id}) + "#certificate"


@login_required
@require_POST
def issue_certificate(request, site_pk):
    site = access.get_owned(Site, request.user, pk=site_pk)
    form = IssueCertificateForm(request.user, site, request.POST)
    if not form.is_valid():
        return render(request, "panel/site_detail.html", site_page_context(request, site, issue_form=form))
    certificates.request_certificate(request.user, form.cleaned_data["account"], form.cleaned_data["domains"],
                                     form.cleaned_data["key_type"], ChallengeType.HTTP01, site)
    messages.success(request, _("Certificate requested; the order's progress is shown below."))
    return redirect(_site_page(site.pk))


@login_required
@require_POST
def renew_certificate(request, pk):
    certificate = access.get_owned(Certificate, request.user, pk=pk)
    try:
        orders.start_order(certificate)
    except IntegrityError:
        messages.warning(request, _("An order for this certificate is already running."))
    else:
        messages.success(request, _("Renewal started."))
    if certificate.site_id and access.scoped(Site, request.user).filter(pk=certificate.site_id).exists():
        return redirect(_site_page(certificate.site_id))
    return redirect("ui:certificate-list")


@login_required
def order_status(request, pk):
    """The fragment the site page polls while an order runs; finished, it stops asking to be polled."""
    order = access.get_owned(Order, request.user, pk=pk)
    certificate = (
        access.scoped(Certificate, request.user).with_current_version().get(pk=order.certificate_id)
    )
    return render(request, "certs/_certificate_status.html",
                  {"order": order, "certificate": with_days_left(certificate)})


@login_required
def certificate_list(request):
    certificates = access.scoped(Certificate, request.user).with_current_version().select_related("site")
    page = Paginator(certificates, CERTIFICATES_PER_PAGE).get_page(request.GET.get("page"))
    for certificate in page:
        with_days_left(certificate)
    return render(request, "certs/certificate_list.html", {"nav": "certificates", "page": page})


@login_required
def account_list(request):
    account_rows = (
        access.scoped(AcmeAccount, request.user)
        .defer("account_key", "eab_hmac_key")  # secrets: not even decrypted for this page
        .annotate(certificate_count=Count("certificates"))
    )
    for account in account_rows:
        account.preset = cas.preset_for_url(account.directory_url)
    return render(request, "certs/account_list.html", {"nav": "accounts", "accounts": account_rows})


@login_required
def account_add(request):
    form = AcmeAccountForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        data = form.cleaned_data
        try:
            accounts.register_account(request.user, data["directory_url"], email=data["email"],
                                      eab_kid=data["eab_kid"], eab_hmac_key=data["eab_hmac_key"])
        except AcmeError as exc:
            form.add_error(None, _("Registration at the CA failed: %(error)s") % {"error": exc})
        else:
            messages.success(request, _("ACME account registered."))
            return redirect("ui:account-list")
    return render(request, "certs/account_form.html", {"nav": "accounts", "form": form})
