"""Certificates by days to expiry: the buckets, their counts in one aggregate query, and the
bar chart of them that the renewals page and the dashboard draw."""

import datetime

from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _lazy

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
