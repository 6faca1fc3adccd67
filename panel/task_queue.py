"""The task queue (the Celery broker, Redis) as seen from a request, and what a sweep does
about tasks it lost.

A request whose work needs a task checks the queue before it stores anything: while Redis is
down it then changes nothing and answers 503 saying why, instead of storing rows whose task
can never be sent and failing with a bare 500.
"""

from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError


class QueueUnavailable(Exception):
    """The broker did not accept a connection."""


def require_reachable():
    """Raise QueueUnavailable unless the broker accepts a connection (one attempt, no retries)."""
    from panel.celery import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0)
    except (OperationalError, OSError) as exc:
        raise QueueUnavailable(str(exc)) from exc


def send_again(stalled, mark, send):
    """Call `send(row)` for each row of the queryset `stalled` (work whose task the broker lost),
    after marking it with the update `mark`; the update matches `stalled` again, so a row is sent
    by one sweep only, and once marked no longer counts as stalled while its task waits in a slow
    queue. Returns how many were sent."""
    count = 0
    for row in stalled:
        if stalled.filter(pk=row.pk).update(**mark):
            send(row)
            count += 1
    return count


class QueueUnavailableMiddleware:
    """Turns QueueUnavailable raised by a view (UI or API) into a 503 that says what to do."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, QueueUnavailable):
            return None
        detail = _("The task queue (Redis) is not reachable, so nothing was changed. Try again in a moment.")
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": detail}, status=503)
        return HttpResponse(detail, status=503, content_type="text/plain; charset=utf-8")
