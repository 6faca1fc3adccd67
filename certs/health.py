"""How a certificate is doing, in the words the dashboard counts and the certificate list
filters by (`?status=valid|expiring|failing`). One definition, so a count on the dashboard
and the list it links to always agree.

The three are exclusive, the most urgent winning:
- failing: its last order failed (last_error is cleared only by a success), a renewal is
  failing, or the certificate has expired;
- expiring: not failing, and its current version expires within EXPIRY_ALERT_DAYS (the
  days the expiry alert uses), unless it is not meant to renew (RETIRED: its owner stopped
  renewing it, or its current version is revoked);
- valid: not failing, issued, and good for longer than that.
A certificate whose first order is still running is none of them.
"""

import datetime

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _


# Not meant to renew: nothing to warn about as it nears expiry (the expiry alert skips them too).
RETIRED = Q(renewal_stopped=True) | Q(current_version__revoked_at__isnull=False)


class Health(models.TextChoices):
    VALID = "valid", _("Valid")
    EXPIRING = "expiring", _("Expiring soon")
    FAILING = "failing", _("Failing")


def health_filter(health, now) -> Q:
    """The certificates in `health` at `now`, as a filter on Certificate."""
    if health == Health.FAILING:
        return ~Q(last_error="") | Q(renewal_failures__gt=0) | Q(current_version__not_after__lt=now)
    healthy = Q(last_error="", renewal_failures=0)
    horizon = now + datetime.timedelta(days=settings.EXPIRY_ALERT_DAYS)
    if health == Health.EXPIRING:
        return (healthy & ~RETIRED
                & Q(current_version__not_after__gte=now, current_version__not_after__lt=horizon))
    return healthy & Q(current_version__not_after__gte=horizon)


def health_counts(now) -> dict:
    """Aggregates {health value: Count} for Certificate querysets: one query for all three."""
    return {health.value: Count("pk", filter=health_filter(health, now)) for health in Health}
