"""How long a login stays locked out.

django-axes locks a username at one client address (settings: AXES_*), so a stranger's wrong
passwords lock only the stranger's own address. Each lockout of the same pair lasts twice as long
as the one before (up to MAX_DOUBLINGS), counting the pair's lockouts of the last day since its
last successful login. axes records every failure in AccessFailureLog with whether it locked.
"""

import math
from datetime import timedelta

from axes.helpers import get_client_ip_address
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

MAX_DOUBLINGS = 6  # 15 minutes grow to 16 hours at most
REMEMBERED = timedelta(days=1)  # a pair's lockouts older than this no longer lengthen the next
# The code step's form has no username: that view puts the one of the pending login here.
USERNAME_ATTRIBUTE = "login_username"


def cool_off(request):
    """AXES_COOLOFF_TIME: how long the failures of this request's (username, address) count,
    which is also how long its lock lasts after the failure that set it."""
    if request is None:
        return first_lock()
    username = getattr(request, USERNAME_ATTRIBUTE, None) or request.POST.get(settings.AXES_USERNAME_FORM_FIELD)
    return lock_length(username, get_client_ip_address(request))


def first_lock():
    return timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)


def lock_length(username, ip_address, latest=None):
    """How long the pair's current lock lasts after `latest`, its latest recorded failure
    (read here unless the caller has it)."""
    pair = {"username": username, "ip_address": ip_address}
    # Measured from the pair's latest recorded failure, which a lock freezes (failures during a
    # lock are not recorded), so a lock keeps the length it started with.
    latest = latest or _latest(AccessAttempt.objects.filter(**pair)) or timezone.now()
    since = max(filter(None, (latest - REMEMBERED, _latest(AccessLog.objects.filter(**pair)))))
    earlier = AccessFailureLog.objects.filter(
        **pair, locked_out=True, attempt_time__gt=since, attempt_time__lt=latest
    ).count()
    return first_lock() * 2 ** min(earlier, MAX_DOUBLINGS)


def minutes_left(username, ip_address):
    """Whole minutes until the pair's lock ends (at least 1), for the login page."""
    latest = _latest(AccessAttempt.objects.filter(username=username, ip_address=ip_address))
    if latest is None:
        return math.ceil(first_lock().total_seconds() / 60)
    left = latest + lock_length(username, ip_address, latest) - timezone.now()
    return max(1, math.ceil(left.total_seconds() / 60))


def _latest(attempts):
    return attempts.aggregate(latest=Max("attempt_time"))["latest"]
