"""Pages of the certificate side: certificates, orders, ACME accounts, DNS credentials.

Thin: access -> form -> one service call (certs.orders, certs.accounts, certs.dns_credentials)
-> redirect or page.
"""

import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Case, Count, F, Q, TextField, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from certs import accounts, cas, certificates, dns_credentials, notifications, orders, upload, versions
from certs.acme import AcmeError
from certs.dns import registry
from certs.forms import (AcmeAccountForm, DnsCredentialForm, DnsProviderChoiceForm, ExternalCertificateForm,
                         IssueCertificateForm, NotificationChannelForm, UploadCertificateForm, provider_label)
from certs.health import Health, health_filter
from certs.models import (AcmeAccount, Certificate, Challenge, DnsCredential, NotificationChannel, NotificationEvent,
                          Order)
from panel.models import Site
from panel.security import audit
from panel.toolkit import access, clock, validation
from panel.toolkit.access import admin_required
from panel.toolkit.deletion import InUse, delete_unless_in_use
from panel.toolkit.sorting import ListSorting, SortableColumn

CERTIFICATES_PER_PAGE = 50
# An admin sees every user's accounts and credentials: a hosting provider's can run into thousands.
ACCOUNTS_PER_PAGE = 50
DNS_CREDENTIALS_PER_PAGE = 50


def with_days_left(certificate):
    """Sets certificate.days_left: whole days until the current version expires (negative once
    expired), or None before the first issuance."""
    version = certificate.current_version
    certificate.days_left = (version.not_after - timezone.now()).days if version else None
    return certificate


def with_status_details(certificate):
    """with_days_left, plus what the certificate's status card shows of its current version:
    its SHA-256 fingerprint (parsed from the stored certificate, so only for one card, not lists)."""
    version = certificate.current_version
    if version:
        version.sha256_fingerprint = versions.sha256_fingerprint(version.cert_pem)
    return with_days_left(certificate)


DNS_WAITING = (Order.Status.AWAITING_USER, Order.Status.PROPAGATING)


def with_dns_records(order):
    """Sets order.dns_records, the TXT records an order waiting for DNS needs, one entry per
    name with every value under it (an apex and its wildcard share a name), and
    order.authorization_expires, when the first of its authorizations runs out."""
    order.dns_records, order.authorization_expires = [], None
    if order.status not in DNS_WAITING:
        return order
    challenges = (Challenge.objects.filter(authorization__order=order, type="dns-01").exclude(record_value="")
                  .select_related("authorization").order_by("id"))
    by_name = {}
    for challenge in challenges:
        values = by_name.setdefault(challenge.record_name, [])
        if challenge.record_value not in values:
            values.append(challenge.record_value)
    order.dns_records = [{"name": name, "values": values} for name, values in by_name.items()]
    expiries = [c.authorization.expires_at for c in challenges if c.authorization.expires_at]
    order.authorization_expires = min(expiries) if expiries else None
    return order


def site_page_context(request, site, issue_form=None):
    """Everything the site page shows; the issue view re-renders it with its form's errors,
    then with the SSL tab open so the errors are in sight."""
    certificate = access.scoped(Certificate, request.user).filter(site=site).with_current_version().first()
    order = certificate.latest_order() if certificate else None
    return {
        "nav": "sites",
        "site": site,
        "open_tab": "certificate" if issue_form else "overview",
        "certificate": with_status_details(certificate) if certificate else None,
        "order": with_dns_records(order) if order else None,
        "issue_form": issue_form or IssueCertificateForm(request.user, site),
        "has_accounts": access.scoped(AcmeAccount, request.user).filter(status=AcmeAccount.Status.VALID).exists(),
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
    data = form.cleaned_data
    try:
        certificates.request_certificate(request.user, data["account"], data["domains"], data["key_type"],
                                         data["challenge"], site, data["dns_credential"], data["challenge_alias"])
    except ValidationError as exc:  # the certificate quota is used up
        form.add_error(None, exc)
        return render(request, "panel/site_detail.html", site_page_context(request, site, issue_form=form))
    messages.success(request, _("Certificate requested; the order's progress is shown below."))
    return redirect(_site_page(site.pk))


def _start_order(request, certificate, started_message):
    """Start an order and say so, or say that one is already running."""
    try:
        orders.start_order(certificate)
    except IntegrityError:
        messages.warning(request, _("An order for this certificate is already running."))
    except orders.NotOrderable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, started_message)


@login_required
@require_POST
def renew_certificate(request, pk):
    certificate = access.get_owned(Certificate, request.user, pk=pk)
    _start_order(request, certificate, _("Renewal started."))
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
    response = render(request, "certs/_certificate_status.html",
                      {"order": with_dns_records(order), "certificate": with_status_details(certificate)})
    if order.finished:
        response["HX-Trigger"] = "order-finished"  # the site page reloads the version history
    return response


@login_required
@require_POST
def order_continue(request, pk):
    """Manual DNS-01: the user says the TXT records are in place; answer the CA now."""
    order = access.get_owned(Order, request.user, pk=pk)
    if orders.continue_order(order):
        messages.success(request, _("The CA is asked to check the TXT records now."))
    else:
        messages.warning(request, _("This order is no longer waiting for DNS records."))
    site_id = order.certificate.site_id
    if site_id and access.scoped(Site, request.user).filter(pk=site_id).exists():
        return redirect(_site_page(site_id))
    return redirect("ui:certificate-list")


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
                webroot=data["webroot"], server_config=data["server_config"])
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
                             % {"names": ", ".join(certificate.domains)})
            return _back_to_certificate(request, certificate)
    return render(request, "certs/certificate_upload.html", {"nav": "certificates", "form": form})


@login_required
def account_list(request):
    account_rows = (
        access.scoped(AcmeAccount, request.user)
        .defer("account_key", "eab_hmac_key")  # secrets: not even decrypted for this page
        .annotate(certificate_count=Count("certificates"))
        .order_by("id")  # an aggregate drops Meta.ordering
    )
    page = Paginator(account_rows, ACCOUNTS_PER_PAGE).get_page(request.GET.get("page"))
    for account in page:
        account.preset = cas.preset_for_url(account.directory_url)
    return render(request, "certs/account_list.html", {"nav": "accounts", "page": page})


@login_required
def account_add(request):
    form = AcmeAccountForm(request.user, request.POST if request.method == "POST" else None)
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


# --- DNS credentials. Their values are never rendered: pages show only which fields are set.


def _catalog_entry(code):
    return next((entry for entry in registry.catalog() if entry["code"] == code), None)


@login_required
def dns_credential_list(request):
    rows = (
        access.scoped(DnsCredential, request.user)
        .defer("credentials")  # secrets: not even decrypted for this page
        .annotate(certificate_count=Count("certificates"))
        .order_by("name", "id")  # an aggregate drops Meta.ordering
    )
    page = Paginator(rows, DNS_CREDENTIALS_PER_PAGE).get_page(request.GET.get("page"))
    for credential in page:
        credential.provider_label = provider_label(credential.provider)
    return render(request, "certs/dns_credential_list.html", {"nav": "dns", "page": page})


@login_required
def dns_credential_add(request):
    """Step one (GET, no provider): choose the provider. Step two (?provider=code, then POST):
    that provider's fields."""
    code = (request.POST if request.method == "POST" else request.GET).get("provider", "")
    chooser = DnsProviderChoiceForm({"provider": code} if code else None)
    if not chooser.is_valid():
        return render(request, "certs/dns_credential_provider.html", {"nav": "dns", "form": chooser})
    provider = _catalog_entry(chooser.cleaned_data["provider"])
    form = DnsCredentialForm(provider, request.POST if request.method == "POST" else None)
    if form.is_valid():
        data = form.cleaned_data
        credential = dns_credentials.save_credential(
            DnsCredential(owner=request.user), provider["code"], data["name"], data["credentials"],
            data["propagation_timeout"],
        )
        messages.success(request, _("DNS credentials “%(name)s” saved.") % {"name": credential.name})
        return redirect("ui:dns-credential-detail", pk=credential.pk)
    return render(request, "certs/dns_credential_form.html", {"nav": "dns", "form": form, "provider": provider})


@login_required
def dns_credential_detail(request, pk):
    credential = access.get_owned(DnsCredential, request.user, pk=pk)
    stored = set(credential.values())
    entry = _catalog_entry(credential.provider)
    fields = [{"label": spec["label"], "sensitive": spec["sensitive"], "is_set": spec["name"] in stored}
              for spec in (entry["fields"] if entry else [])]
    return render(request, "certs/dns_credential_detail.html", {
        "nav": "dns",
        "credential": credential,
        "provider_label": provider_label(credential.provider),
        "fields": fields,
        "certificates": credential.certificates.select_related("site").order_by("id"),
    })


@login_required
@require_POST
def dns_credential_test(request, pk):
    credential = access.get_owned(DnsCredential, request.user, pk=pk)
    ok, message = dns_credentials.test_credential(credential)
    if ok:
        messages.success(request, _("“%(name)s”: %(message)s") % {"name": credential.name, "message": message})
    else:
        messages.error(request, _("“%(name)s” did not work: %(message)s") % {"name": credential.name,
                                                                             "message": message})
    if request.POST.get("back") == "list":
        return redirect("ui:dns-credential-list")
    return redirect("ui:dns-credential-detail", pk=credential.pk)


@login_required
def dns_credential_delete(request, pk):
    """GET asks for confirmation; POST deletes, unless certificates still use the credentials."""
    credential = access.get_owned(DnsCredential, request.user, pk=pk)
    if request.method != "POST":
        return render(request, "certs/dns_credential_delete.html",
                      {"nav": "dns", "credential": credential, "in_use": credential.certificates.count()})
    try:
        delete_unless_in_use(credential, credential.certificates)
    except InUse as exc:
        messages.error(request, ngettext(
            "“%(name)s” cannot be deleted: %(count)d certificate uses it.",
            "“%(name)s” cannot be deleted: %(count)d certificates use it.", exc.count,
        ) % {"name": credential.name, "count": exc.count})
        return redirect("ui:dns-credential-detail", pk=credential.pk)
    messages.success(request, _("DNS credentials “%(name)s” deleted.") % {"name": credential.name})
    return redirect("ui:dns-credential-list")


# --- certificate versions: history, downloads, revocation, re-issue.
# The private key leaves only as an attachment, only for its owner, only for a POST (CSRF).

VERSIONS_PER_PAGE = 50
VERSIONS_ON_SITE_PAGE = 10


class RevokeForm(forms.Form):
    reason = forms.ChoiceField(label=_lazy("Reason"), choices=versions.RevocationReason.choices,
                               initial=versions.RevocationReason.UNSPECIFIED, widget=forms.RadioSelect)


def _owned_certificate(request, pk):
    return get_object_or_404(access.scoped(Certificate, request.user).with_current_version().select_related("site"),
                             pk=pk)


def _described(version_rows, certificate):
    now = timezone.now()
    return [versions.describe(version, certificate, now) for version in version_rows]


def _certificate_page(request, certificate, export_error="", status=200):
    page = Paginator(versions.history(certificate), VERSIONS_PER_PAGE).get_page(request.GET.get("page"))
    order = certificate.latest_order()
    return render(request, "certs/certificate_detail.html", {
        "nav": "certificates",
        "certificate": with_status_details(certificate),
        "order": with_dns_records(order) if order else None,
        "page": page,
        "versions": _described(page, certificate),
        "export_error": export_error,
    }, status=status)


def _back_to_certificate(request, certificate):
    """The site page when the certificate belongs to one the user sees, else the certificate's own page."""
    if certificate.site_id and access.scoped(Site, request.user).filter(pk=certificate.site_id).exists():
        return redirect(_site_page(certificate.site_id))
    return redirect("ui:certificate-detail", pk=certificate.pk)


@login_required
def certificate_detail(request, pk):
    return _certificate_page(request, _owned_certificate(request, pk))


@login_required
def certificate_history(request, pk):
    """The version history fragment the site page loads: the newest versions and a link to all."""
    certificate = _owned_certificate(request, pk)
    rows = list(versions.history(certificate)[:VERSIONS_ON_SITE_PAGE + 1])
    return render(request, "certs/_version_history.html", {
        "certificate": certificate,
        "versions": _described(rows[:VERSIONS_ON_SITE_PAGE], certificate),
        "more_versions": len(rows) > VERSIONS_ON_SITE_PAGE,
    })


@login_required
def version_download(request, pk, fmt):
    """cert and fullchain: a plain link. pem-key and pfx: a POST from a form, owner only."""
    if fmt not in versions.ExportFormat.values:
        raise Http404
    secret = fmt in versions.SECRET_FORMATS
    if request.method != "POST" and (secret or request.method not in ("GET", "HEAD")):
        return HttpResponseNotAllowed(["POST"] if secret else ["GET", "HEAD", "POST"])
    version = versions.get_version(request.user, pk, secret=secret)
    try:
        exported = versions.export(version, fmt, password=request.POST.get("password", ""))
    except versions.ExportRefused as exc:
        return _certificate_page(request, _owned_certificate(request, version.certificate_id),
                                 export_error=str(exc), status=400)
    if secret:
        audit.record(request, audit.Action.KEY_DOWNLOAD, version, format=fmt)
    return versions.as_attachment(exported)


@login_required
def version_revoke(request, pk):
    """GET asks which reason, and for confirmation; POST revokes at the CA."""
    version = versions.get_version(request.user, pk)
    certificate = _owned_certificate(request, version.certificate_id)
    versions.describe(version, certificate)
    if version.revoked_at:
        messages.warning(request, _("This certificate was already revoked."))
        return redirect("ui:certificate-detail", pk=certificate.pk)
    form = RevokeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            versions.revoke(version, form.cleaned_data["reason"])
        except versions.RevocationRefused as exc:
            messages.warning(request, str(exc))
            return redirect("ui:certificate-detail", pk=certificate.pk)
        except AcmeError as exc:
            form.add_error(None, _("The CA did not revoke it: %(error)s") % {"error": exc})
        else:
            audit.record(request, audit.Action.REVOKE, version, reason=version.revocation_reason)
            if version.is_current:
                messages.success(request, _("Certificate revoked. Re-issue it so the site gets a valid one."))
            else:
                messages.success(request, _("Certificate revoked."))
            return redirect("ui:certificate-detail", pk=certificate.pk)
    return render(request, "certs/version_revoke.html",
                  {"nav": "certificates", "version": version, "certificate": certificate, "form": form})


@login_required
@require_POST
def reissue_certificate(request, pk):
    """A new order (with a new key) for the same names: after a revocation, or any time."""
    certificate = access.get_owned(Certificate, request.user, pk=pk)
    _start_order(request, certificate, _("Re-issue started: a new certificate with a new key is being ordered."))
    return _back_to_certificate(request, certificate)


# --- renewal overview: how close to expiry everything is, and what is failing to renew

RENEWALS_PER_PAGE = 100
# (key, label, lower bound in days, upper bound in days): days to expiry, half-open [lower, upper).
EXPIRY_BUCKETS = (
    ("expired", _lazy("Expired"), None, 0),
    ("lt7", _lazy("< 7 days"), 0, 7),
    ("lt14", _lazy("7–13 days"), 7, 14),
    ("lt30", _lazy("14–29 days"), 14, 30),
    ("lt60", _lazy("30–59 days"), 30, 60),
    ("later", _lazy("60 days or more"), 60, None),
)
# The dashboard's chart: what expires within the next 90 days.
UPCOMING_EXPIRY_BUCKETS = EXPIRY_BUCKETS[:-1] + (("lt90", _lazy("60–89 days"), 60, 90),)
_BUCKET_COLOURS = {"expired": "#c62828", "lt7": "#c62828", "lt14": "#9a6700", "lt30": "#9a6700",
                   "lt60": "#1f8f3a", "lt90": "#1f8f3a", "later": "#1f8f3a"}


def expiry_bucket_counts(buckets, now):
    """Aggregates {bucket key: Count} of certificates by days to expiry, one per bucket."""
    def window(lower, upper):
        q = Q(current_version__isnull=False)
        if lower is not None:
            q &= Q(current_version__not_after__gte=now + datetime.timedelta(days=lower))
        if upper is not None:
            q &= Q(current_version__not_after__lt=now + datetime.timedelta(days=upper))
        return q

    return {key: Count("pk", filter=window(lower, upper)) for key, _label, lower, upper in buckets}


def renewal_counts(certificate_rows, now):
    """How many certificates fall in each EXPIRY_BUCKETS bucket, how many were never issued
    ("unissued") and how many are failing to renew ("failing"): one aggregate query."""
    aggregates = expiry_bucket_counts(EXPIRY_BUCKETS, now)
    aggregates["unissued"] = Count("pk", filter=Q(current_version__isnull=True))
    aggregates["failing"] = Count("pk", filter=Q(renewal_failures__gt=0))
    return certificate_rows.order_by().aggregate(**aggregates)


def expiry_chart(counts, buckets=EXPIRY_BUCKETS, width=640, height=220):
    """Bar geometry for the inline SVG chart: the page needs no script and no CDN."""
    top, bottom, side = 24, 40, 8
    slot = (width - 2 * side) / len(buckets)
    bar_width = slot * 0.6
    tallest = max([counts[key] for key, *_rest in buckets] + [1])
    usable = height - top - bottom
    bars = []
    for index, (key, label, _lower, _upper) in enumerate(buckets):
        count = counts[key]
        bar_height = round(usable * count / tallest, 1) if count else 0
        x = side + index * slot + (slot - bar_width) / 2
        bars.append({
            "key": key, "label": label, "count": count, "colour": _BUCKET_COLOURS[key],
            "x": round(x, 1), "width": round(bar_width, 1), "height": bar_height,
            "y": round(top + usable - bar_height, 1), "centre": round(x + bar_width / 2, 1),
            "count_y": round(top + usable - bar_height - 6, 1),
        })
    return {"width": width, "height": height, "baseline": top + usable, "label_y": top + usable + 20,
            "bars": bars}


@login_required
def renewal_overview(request):
    now = clock.now()  # the renewal sweep's clock, so the page and the sweep agree
    certificate_rows = access.scoped(Certificate, request.user)
    counts = renewal_counts(certificate_rows, now)
    ordered = (
        certificate_rows.for_list().select_related("site")
        .annotate(failing_first=Case(When(renewal_failures__gt=0, then=Value(0)), default=Value(1)))
        .order_by("failing_first", F("next_renewal_at").asc(nulls_last=True), "id")
    )
    page = Paginator(ordered, RENEWALS_PER_PAGE).get_page(request.GET.get("page"))
    for certificate in page:
        version = certificate.current_version
        certificate.days_left = (version.not_after - now).days if version else None
        certificate.renewal_due = certificate.next_renewal_at is not None and certificate.next_renewal_at <= now
    return render(request, "certs/renewal_overview.html", {
        "nav": "renewals",
        "page": page,
        "counts": counts,
        "total": sum(counts[key] for key, *_rest in EXPIRY_BUCKETS) + counts["unissued"],
        "chart": expiry_chart(counts),
        "now": now,
    })


# --- notification channels. The URL holds tokens: pages show only its scheme, never the rest.


@login_required
def notification_list(request):
    channels = access.scoped(NotificationChannel, request.user).order_by("name", "id")
    labels = dict(NotificationEvent.choices)
    for channel in channels:
        channel.redacted_url = notifications.redacted_url(channel.url)
        channel.event_labels = [labels[event] for event in channel.events if event in labels]
    return render(request, "certs/notification_list.html", {"nav": "notifications", "channels": channels})


@login_required
def notification_add(request):
    form = NotificationChannelForm(request.POST if request.method == "POST" else None, user=request.user)
    if form.is_valid():
        channel = NotificationChannel.objects.create(owner=request.user, **form.cleaned_data)
        messages.success(request, _("Notification channel “%(name)s” added. Send a test to check that it "
                                    "works.") % {"name": channel.name})
        return redirect("ui:notification-list")
    return render(request, "certs/notification_form.html", {"nav": "notifications", "form": form})


@login_required
@require_POST
def notification_test(request, pk):
    channel = access.get_owned(NotificationChannel, request.user, pk=pk)
    ok, message = notifications.send_test(channel)
    if ok:
        messages.success(request, _("Test message sent to “%(name)s”.") % {"name": channel.name})
    else:
        messages.error(request, _("“%(name)s” did not work: %(message)s") % {"name": channel.name,
                                                                             "message": message})
    return redirect("ui:notification-list")


@login_required
def notification_delete(request, pk):
    """GET asks for confirmation; POST deletes."""
    channel = access.get_owned(NotificationChannel, request.user, pk=pk)
    if request.method == "POST":
        channel.delete()
        messages.success(request, _("Notification channel “%(name)s” deleted.") % {"name": channel.name})
        return redirect("ui:notification-list")
    return render(request, "certs/notification_delete.html", {"nav": "notifications", "channel": channel})
