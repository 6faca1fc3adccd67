"""What the pages show of a certificate, shared by several of them: the days it has left, its
status card, the DNS records its order waits for, the certificate tab of the site page, the
certificate page, and where to go back to after acting on it.

Not a view module: the certificate pages (certs.views) and the hosting pages (the site page,
the dashboard) both build on it, and neither imports the other."""

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone

from certs import versions
from certs.challenges import dns01
from certs.models import AcmeAccount, Certificate, Challenge, Order
from panel.deployment.nginx.upstream_names import unresolved_upstream_host
from panel.models import Site
from panel.toolkit import access

VERSIONS_PER_PAGE = 50
DNS_WAITING = (Order.Status.AWAITING_USER, Order.Status.PROPAGATING)


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
    order.dns_records = [{"name": name, "host": dns01.host_record(name), "values": values}
                         for name, values in by_name.items()]
    expiries = [c.authorization.expires_at for c in challenges if c.authorization.expires_at]
    order.authorization_expires = min(expiries) if expiries else None
    return order


def site_page_context(request, site, issue_form, open_tab="overview", one_click_form=None):
    """Everything the site page shows. The issue form and the one-click form (certs.forms) are the
    caller's: fresh ones, or one a view re-renders with its errors, then with the SSL tab open so
    the errors are in sight."""
    certificate = access.scoped(Certificate, request.user).filter(site=site).with_current_version().first()
    order = certificate.latest_order() if certificate else None
    pending = certificate is not None and certificate.current_version_id is None
    serving = site.serving_version() if pending else None
    return {
        "nav": "sites",
        "site": site,
        "open_tab": open_tab,
        "certificate": with_status_details(certificate) if certificate else None,
        "order": with_dns_records(order) if order else None,
        # A new certificate not issued yet (a wildcard just ticked): the earlier one still serves.
        "served_meanwhile": serving,
        "issue_form": issue_form,
        "one_click_form": one_click_form,
        "return_to": site_certificate_tab(site.pk),  # the `next` of the tab's "add … first" detours
        "has_accounts": access.scoped(AcmeAccount, request.user).filter(status=AcmeAccount.Status.VALID).exists(),
        # Asked now, not at the last apply: the name may have stopped resolving since (panel/_upstream_resolution.html).
        "upstream_unresolved": unresolved_upstream_host(site),
    }


def site_certificate_tab(site_id):
    return reverse("ui:site-detail", kwargs={"pk": site_id}) + "#certificate"


def back_to_site_or(request, certificate, fallback, **fallback_kwargs):
    """The site page's certificate tab when the certificate belongs to a site the user sees,
    else `fallback` (a URL name)."""
    if certificate.site_id and access.scoped(Site, request.user).filter(pk=certificate.site_id).exists():
        return redirect(site_certificate_tab(certificate.site_id))
    return redirect(fallback, **fallback_kwargs)


def owned_certificate(request, pk):
    """The certificate as its pages show it; someone else's is a 404."""
    return get_object_or_404(access.scoped(Certificate, request.user).with_current_version().select_related("site"),
                             pk=pk)


def described_versions(version_rows, certificate):
    now = timezone.now()
    return [versions.describe(version, certificate, now) for version in version_rows]


def certificate_page_context(request, certificate, export_error=""):
    """The certificate page: its status card, its order and a page of its version history;
    a refused download shows it again with export_error."""
    page = Paginator(versions.history(certificate), VERSIONS_PER_PAGE).get_page(request.GET.get("page"))
    order = certificate.latest_order()
    return {
        "nav": "certificates",
        "certificate": with_status_details(certificate),
        "order": with_dns_records(order) if order else None,
        "page": page,
        "versions": described_versions(page, certificate),
        "export_error": export_error,
    }
