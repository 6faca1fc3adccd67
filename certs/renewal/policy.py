"""When certificates renew, and what a new version or a failure does to the plan (the sweep
that starts due renewals is certs.renewal.sweep; it calls orders, which call this).

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
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from certs import accounts, notifications
from certs.acme import AcmeError
from certs.acme.ari import DEFAULT_RETRY_AFTER, ari_cert_id, clamp_retry_after
from certs.models import Certificate, CertificateVersion, Order
from panel.toolkit import clock, validation
from panel.toolkit.task_queue import NamedTask

log = logging.getLogger(__name__)

MAX_BACKOFF = datetime.timedelta(days=1)
ARI_REFRESH = NamedTask("certs.tasks.ari_refresh")


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
    # NOT EXISTS rather than a join: PostgreSQL would otherwise scan every version ever issued.
    young = CertificateVersion.objects.filter(pk=OuterRef("current_version_id"), created_at__gt=settled)
    return (
        Certificate.objects.renewable().filter(next_renewal_at__lte=now, current_version__isnull=False)
        .exclude(Exists(young))
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


def issued(cert, version, is_renewal=False):
    """A new version is in place: plan the next renewal. Called inside the issuing transaction.
    Returns the ids of the site's older certificates this one makes redundant (retire_covered)."""
    cert.renewal_failures = 0
    cert.next_renewal_at = planned_renewal(version)
    schedule_ari_refresh(cert)  # ARI (network) runs after the commit, see apply_ari
    if is_renewal:
        names = ", ".join(cert.domains)
        notifications.notify(cert.owner_id, "renewed", f"Renewed: {names}",
                             f"A new certificate for {names} was issued: serial {version.serial}, valid until "
                             f"{version.not_after:%Y-%m-%d %H:%M} UTC. Next renewal planned for "
                             f"{cert.next_renewal_at:%Y-%m-%d %H:%M} UTC.")
    return retire_covered(cert)


def retire_covered(cert):
    """The site's older certificates of the same owner whose every name `cert` covers stop
    renewing (a wildcard ticked after a first certificate, another key type): nginx serves one
    certificate per site, so they would go on renewing, and alerting, for nothing. Their versions
    stay, valid until they expire. Returns their ids."""
    if cert.site_id is None:
        return []
    older = (Certificate.objects.filter(site_id=cert.site_id, owner_id=cert.owner_id, renewal_stopped=False)
             .exclude(pk=cert.pk).only("pk", "domains"))
    covered = [other.pk for other in older
               if all(any(validation.name_covers(mine, name) for mine in cert.domains) for name in other.domains)]
    stop_renewing(covered)
    return covered


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


def stopped(cert, message):
    """A renewal that cannot succeed as things stand (names no longer on the owner's sites): no
    further attempt, so the sweep does not fail it again and again; the certificate reads as
    failed. A renewal by hand that succeeds plans anew (issued)."""
    cert.status = Certificate.Status.FAILED
    cert.renewal_failures += 1  # apply_ari never re-plans after a failed renewal
    cert.next_renewal_at = None  # due() never picks it
    cert.ari_check_after = None  # no window to ask the CA about
    names = ", ".join(cert.domains)
    notifications.notify(cert.owner_id, "renewal_failed", _("Renewal failed: %(names)s") % {"names": names},
                         _("Renewing the certificate for %(names)s failed: %(error)s\nIt is not renewed again "
                           "until it is renewed by hand.") % {"names": names, "error": message})


def stop_renewing(certificate_ids):
    """Their owner wants them no longer renewed (their site was deleted): no next renewal and no
    ARI re-check; they stay valid until they expire, without expiry alerts (renewal_stopped).
    A renewal asked for by hand clears the flag (certs.orders.start_order) and plans anew."""
    Certificate.objects.filter(pk__in=certificate_ids).update(
        renewal_stopped=True, next_renewal_at=None, ari_check_after=None, ari_window_start=None,
        ari_window_end=None)


# --- ARI (RFC 9773): the CA's suggested renewal window

ARI_TRANSIENT_RETRY = 3600.0  # seconds before asking again after a network or server error
ARI_LEASE = datetime.timedelta(minutes=10)  # a queued re-check is not queued again for this long


def schedule_ari_refresh(cert):
    """A new version is in place: the old window no longer applies; ask the CA about the
    new one once the issuing transaction has committed (never inside it: network I/O).
    ari_check_after = now makes the ARI beat ask anyway if the queued task is lost."""
    now = clock.now()
    cert.ari_window_start = cert.ari_window_end = None
    cert.ari_check_after = now
    if cert.pk is None:
        return
    Certificate.objects.filter(pk=cert.pk).update(ari_window_start=None, ari_window_end=None, ari_check_after=now)
    certificate_id = cert.pk
    transaction.on_commit(lambda: enqueue_ari_refresh(certificate_id))


def enqueue_ari_refresh(certificate_id):
    try:
        ARI_REFRESH.delay(certificate_id)
    except Exception:  # noqa: BLE001 - the broker is down: the ARI beat asks later (ari_check_after)
        log.warning("certificate %s: could not queue the ARI check", certificate_id, exc_info=True)


def apply_ari(cert, version, acme=None) -> bool:
    """Ask the CA's renewalInfo about `version` and plan `cert`'s renewal inside the window.

    Sets (in memory; the caller saves) ari_window_start/end, ari_check_after (from the
    CA's Retry-After, clamped to 1 min .. 1 day) and next_renewal_at: a uniformly random
    time inside the window, not in the past (now if the window has passed). A time
    already planned inside the new window stays, so a re-check that finds the window
    unchanged does not move it; after a failed renewal the back-off stands, and a certificate
    with no renewal planned (stop_renewing, policy.stopped) stays unplanned. Returns
    whether the CA offers ARI for it. Talks to the CA: never call inside a transaction.
    """
    now = clock.now()
    if version.not_after <= now:  # RFC 9773 4.3: no ARI for an expired certificate
        cert.ari_check_after = None
        return False
    if acme is None:
        acme = accounts.client_for(cert.account)
    try:
        window = acme.renewal_info(version.cert_pem)
    except AcmeError as exc:
        retry = exc.retry_after or (ARI_TRANSIENT_RETRY if exc.transient else DEFAULT_RETRY_AFTER)
        cert.ari_check_after = now + datetime.timedelta(seconds=clamp_retry_after(retry))
        log.warning("certificate %s: renewalInfo failed (%s); asking again at %s", cert.pk, exc,
                    cert.ari_check_after)
        return False
    if window is None:  # the CA offers no ARI: the plain plan stands
        cert.ari_window_start = cert.ari_window_end = cert.ari_check_after = None
        return False
    start, end, retry_after = window
    planned = cert.next_renewal_at
    keep = cert.ari_window_start is not None and planned is not None and start <= planned <= end
    cert.ari_window_start, cert.ari_window_end = start, end
    cert.ari_check_after = now + datetime.timedelta(seconds=clamp_retry_after(retry_after))
    if not keep and not cert.renewal_failures and planned is not None:
        cert.next_renewal_at = random_time_in_window(start, end, now)
    return True


def random_time_in_window(start, end, now) -> datetime.datetime:
    """Uniformly random in the part of [start, end] that is not yet past; now if all of it is."""
    start = max(start, now)
    if end <= start:
        return now
    return start + (end - start) * random.random()


def refresh_ari(certificate_id) -> bool:
    """apply_ari for a certificate's current version, saved unless the certificate changed
    meanwhile (a new version, a failed renewal): then that newer plan stands."""
    cert = (Certificate.objects.renewable().select_related("account", "current_version")
            .filter(pk=certificate_id).first())
    if cert is None or cert.current_version is None:
        return False
    version, before = cert.current_version, cert.next_renewal_at
    offered = apply_ari(cert, version)
    saved = Certificate.objects.filter(pk=cert.pk, current_version_id=version.pk, next_renewal_at=before).update(
        ari_window_start=cert.ari_window_start, ari_window_end=cert.ari_window_end,
        ari_check_after=cert.ari_check_after, next_renewal_at=cert.next_renewal_at,
    )
    if offered and saved:
        log.info("certificate %s: ARI window %s .. %s, renewal planned for %s", cert.pk, cert.ari_window_start,
                 cert.ari_window_end, cert.next_renewal_at)
    return bool(offered and saved)


def replaces_id(cert) -> str:
    """The ARI id of the version a new order for `cert` replaces ("" for a first issuance,
    or a certificate without an Authority Key Identifier). Sent only if the CA offers ARI."""
    version = cert.current_version
    if version is None:
        return ""
    try:
        return ari_cert_id(version.cert_pem)
    except ValueError:
        return ""


def ari_due(now=None):
    """Certificates whose ARI re-check time has come (the CA may have moved the window)."""
    now = now or clock.now()
    return Certificate.objects.renewable().filter(ari_check_after__lte=now, current_version__isnull=False)


def recheck_ari(now=None, limit=None):
    """Queue an ARI check for every certificate due one; returns their ids. Each is leased
    for ARI_LEASE first, so the next beat does not queue it again while it waits."""
    now = now or clock.now()
    ids = list(ari_due(now).order_by("ari_check_after").values_list("pk", flat=True)[
        : limit or settings.RENEWAL_SWEEP_LIMIT])
    if ids:
        Certificate.objects.filter(pk__in=ids, ari_check_after__lte=now).update(ari_check_after=now + ARI_LEASE)
        for certificate_id in ids:
            enqueue_ari_refresh(certificate_id)
    return ids
