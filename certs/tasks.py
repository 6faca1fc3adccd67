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
def renewal_sweep():
    from certs import renewal

    renewal.sweep()
