"""The dashboard, the panel's home page: sites and certificates at a glance.

It lives with hosting, the wing that puts sites and their certificates together (as the site
page does); the certificate side knows nothing of it."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Count, F, Q
from django.shortcuts import render

from certs.expiry import UPCOMING_EXPIRY_BUCKETS, expiry_bucket_counts, expiry_chart
from certs.health import Health, health_counts, health_filter
from certs.models import Certificate, Order
from certs.presentation import with_days_left
from panel.models import Site
from panel.toolkit import access, clock

DASHBOARD_FAILURES = 10
DASHBOARD_ORDERS = 10


@login_required
def dashboard(request):
    """Counts (sites whose config nginx rejected among them), the expiry chart, what is failing
    (most urgent first) and recent orders: a fixed number of queries however many sites and
    certificates there are."""
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
    site_counts = access.scoped(Site, request.user).order_by().aggregate(
        all=Count("pk"), rejected=Count("pk", filter=Q(config_status=Site.ConfigStatus.FAILED)))
    return render(request, "panel/dashboard.html", {
        "nav": "dashboard",
        "site_count": site_counts["all"],
        "rejected_site_count": site_counts["rejected"],
        "counts": counts,
        "expiring_days": settings.EXPIRY_ALERT_DAYS,
        "chart": expiry_chart(counts, UPCOMING_EXPIRY_BUCKETS),
        "failures": [with_days_left(certificate) for certificate in failures],
        "recent_orders": recent_orders,
    })
