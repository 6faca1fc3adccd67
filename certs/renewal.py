"""When certificates renew, the sweep that starts renewals, and what a failure does.

A certificate's `next_renewal_at` is the single answer to "when": inside the CA's
ARI window when it offers one, else when a third of the lifetime is left (right
for 90-day, 45-day and 6-day certificates alike), moved earlier by a little
jitter so certificates issued together do not renew together; after a failed
renewal, the time of the next attempt (exponential back-off, honouring the
CA's Retry-After).
"""

import datetime
import logging
import random

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Exists, OuterRef
from django.utils import timezone

from certs import notifications
from certs.models import Certificate, Order
from panel import clock

log = logging.getLogger(__name__)

MAX_BACKOFF = datetime.timedelta(days=1)


def planned_renewal(version) -> datetime.datetime:
    """A third of the lifetime before expiry, minus up to 2% of the lifetime (at most 12 h) of jitter."""
    lifetime = version.not_after - version.not_before
    jitter = min(lifetime / 50, datetime.timedelta(hours=12)) * random.random()
    return version.not_after - lifetime / 3 - jitter


def due(now=None):
    """Certificates whose renewal time has come and that have no order in flight.
    Served by the index on next_renewal_at.

    A version younger than RENEWAL_MIN_AGE_SECONDS (real time) is never renewed: whatever
    goes wrong with dates or windows, the panel cannot fall into a renewal storm and
    burn the CA's rate limits."""
    now = now or clock.now()
    active = Order.objects.filter(certificate=OuterRef("pk")).exclude(status__in=Order.FINISHED)
    settled = timezone.now() - datetime.timedelta(seconds=settings.RENEWAL_MIN_AGE_SECONDS)
    return (
        Certificate.objects.filter(next_renewal_at__lte=now, current_version__created_at__lte=settled)
        .exclude(Exists(active))
        .order_by("next_renewal_at")
    )


def reason(cert, now=None) -> str:
    """Why `cert` is (or is not yet) due, in words."""
    now = now or clock.now()
    version = cert.current_version
    if version is None:
        return "never issued"
    if cert.renewal_failures:
        return (f"retry #{cert.renewal_failures + 1} after a failed renewal "
                f"(last error: {cert.last_error[:120]})")
    left = version.not_after - now
    if cert.ari_window_start and cert.ari_window_end:
        return (f"inside the CA's renewal window {cert.ari_window_start:%Y-%m-%d %H:%M} – "
                f"{cert.ari_window_end:%Y-%m-%d %H:%M} UTC")
    lifetime = version.not_after - version.not_before
    return f"{left.days} of {lifetime.days} days left (renews when a third is left)"


def sweep(now=None, limit=None):
    """Start a renewal order for every due certificate; returns their ids. Safe to run
    twice at once: a certificate never gets two active orders (the database says no)."""
    from certs import orders

    started = []
    for cert in due(now)[: limit or settings.RENEWAL_SWEEP_LIMIT]:
        try:
            orders.start_order(cert, is_renewal=True)
        except IntegrityError:
            continue  # another sweep (or the user) got there first
        started.append(cert.pk)
    if started:
        log.info("renewal sweep started %d order(s)", len(started))
    return started


def issued(cert, version, is_renewal=False):
    """A new version is in place: plan the next renewal. Called inside the issuing transaction."""
    cert.renewal_failures = 0
    cert.next_renewal_at = planned_renewal(version)
    if is_renewal:
        names = ", ".join(cert.domains)
        notifications.notify(cert.owner_id, "renewed", f"Renewed: {names}",
                             f"A new certificate for {names} was issued: serial {version.serial}, valid until "
                             f"{version.not_after:%Y-%m-%d %H:%M} UTC. Next renewal planned for "
                             f"{cert.next_renewal_at:%Y-%m-%d %H:%M} UTC.")


def failed(cert, message, retry_after=None):
    """A renewal order failed: try again later, sooner rather than at the last minute."""
    cert.renewal_failures += 1
    backoff = datetime.timedelta(seconds=settings.RENEWAL_RETRY_SECONDS * 2 ** (cert.renewal_failures - 1))
    backoff = max(min(backoff, MAX_BACKOFF), datetime.timedelta(seconds=retry_after or 0))
    version = cert.current_version
    if version is not None:
        # Never wait out the certificate: at most half the time it has left.
        backoff = min(backoff, max((version.not_after - clock.now()) / 2, datetime.timedelta(seconds=60)))
    cert.next_renewal_at = clock.now() + backoff
    names = ", ".join(cert.domains)
    notifications.notify(cert.owner_id, "renewal_failed", f"Renewal failed: {names}",
                         f"Renewing the certificate for {names} failed: {message}\n"
                         f"Failed attempts in a row: {cert.renewal_failures}. "
                         f"Next attempt: {cert.next_renewal_at:%Y-%m-%d %H:%M} UTC.")
