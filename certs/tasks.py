"""Celery entry points on the certificate side. They take ids, never secrets."""

from celery import shared_task
from django.db import transaction

from certs import orders


@shared_task(acks_late=True, ignore_result=True)
def advance_order(order_id, wakeup):
    """Run one step of an order, if this delivery still owns it (see certs.orders)."""
    with transaction.atomic():
        order = orders.claim(order_id, wakeup)
    if order == orders.Claim.BUSY:
        # Someone holds the claim (or died holding it): look again once it may have lapsed.
        advance_order.apply_async((order_id, wakeup), countdown=2)
        return
    if order == orders.Claim.STALE:
        return
    # No transaction around the step: it talks to the CA, and each piece of progress
    # (an ACME URL, an answered challenge) must be saved the moment it exists.
    orders.run_step(order)


@shared_task(ignore_result=True)
def resume_stalled_orders():
    orders.resume_stalled()


@shared_task(ignore_result=True)
def resume_stalled_installs():
    from certs import install

    install.resume_stalled()


@shared_task(ignore_result=True)
def renewal_sweep():
    from certs import renewal

    renewal.sweep()


@shared_task(acks_late=True, ignore_result=True)  # on the deploy queue: see CELERY_TASK_ROUTES
def install_certificate(certificate_id, target_id=None):
    """Install a certificate's current version at its install targets (or at one of them)."""
    from certs import install

    install.run_targets_for(certificate_id, only=target_id)


@shared_task(ignore_result=True)
def send_notification(channel_id, event, subject, body):
    """Send one alert to one channel. The channel's URL (it holds tokens) is read here,
    from the database, never from the broker. A failure is recorded on the channel."""
    from certs import notifications

    notifications.deliver(channel_id, subject, body)


@shared_task(ignore_result=True)
def expiry_alerts():
    from certs import notifications

    notifications.expiry_alerts()


@shared_task(ignore_result=True)
def ari_refresh(certificate_id):
    """Ask the CA's renewalInfo (RFC 9773) about a certificate and plan its renewal in the window."""
    from certs import renewal

    renewal.refresh_ari(certificate_id)


@shared_task(ignore_result=True)
def ari_recheck():
    """Beat: queue ari_refresh for certificates whose Retry-After has passed (the CA can move a window)."""
    from certs import renewal

    renewal.recheck_ari()
