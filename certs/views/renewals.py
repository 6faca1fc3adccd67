"""The renewal overview: how close to expiry everything is, and what is failing to renew."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, F, Value, When
from django.shortcuts import render

from certs.expiry import EXPIRY_BUCKETS, expiry_chart, renewal_counts
from certs.models import Certificate
from panel.toolkit import access, clock

RENEWALS_PER_PAGE = 100


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
