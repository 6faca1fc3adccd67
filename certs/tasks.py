"""Celery entry points on the certificate side. They take ids, never secrets, and call the
services. Each is registered under an explicit name that never changes: tasks already queued
in Redis when the panel is upgraded still run (services queue them by these names, see
panel.toolkit.task_queue.NamedTask). The deploy tasks are in panel.deployment.tasks."""

from celery import shared_task
from django.db import transaction

from certs import notifications, orders
from certs.renewal import policy, sweep


@shared_task(name="certs.tasks.advance_order", acks_late=True, ignore_result=True)
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


@shared_task(name="certs.tasks.resume_stalled_orders", ignore_result=True)
def resume_stalled_orders():
    orders.resume_stalled()


@shared_task(name="certs.tasks.renewal_sweep", ignore_result=True)
def renewal_sweep():
    sweep.sweep()


@shared_task(name="certs.tasks.send_notification", ignore_result=True)
def send_notification(channel_id, event, subject, body):
    """Send one alert to one channel. The channel's URL (it holds tokens) is read here,
    from the database, never from the broker. A failure is recorded on the channel."""
    notifications.deliver(channel_id, subject, body)


@shared_task(name="certs.tasks.expiry_alerts", ignore_result=True)
def expiry_alerts():
    notifications.expiry_alerts()


@shared_task(name="certs.tasks.ari_refresh", ignore_result=True)
def ari_refresh(certificate_id):
    """Ask the CA's renewalInfo (RFC 9773) about a certificate and plan its renewal in the window."""
    policy.refresh_ari(certificate_id)


@shared_task(name="certs.tasks.ari_recheck", ignore_result=True)
def ari_recheck():
    """Beat: queue ari_refresh for certificates whose Retry-After has passed (the CA can move a window)."""
    policy.recheck_ari()
