"""The renewal sweep (Celery beat): start a renewal order for every certificate whose time has
come (certs.renewal.policy says when)."""

import logging

from django.conf import settings
from django.db import IntegrityError

from certs import orders
from certs.renewal import policy

log = logging.getLogger(__name__)


def sweep(now=None, limit=None):
    """Start a renewal order for every due certificate; returns their ids. Safe to run
    twice at once: a certificate never gets two active orders (the database says no)."""
    started = []
    for cert in policy.due(now)[: limit or settings.RENEWAL_SWEEP_LIMIT]:
        try:
            orders.start_order(cert, is_renewal=True)
        except IntegrityError:
            continue  # another sweep (or the user) got there first
        started.append(cert.pk)
    if started:
        log.info("renewal sweep started %d order(s)", len(started))
    return started
