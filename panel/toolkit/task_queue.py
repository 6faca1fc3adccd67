"""The task queue (the Celery broker, Redis) as seen from a service: how work is queued, how a
request checks the queue first, and what a sweep does about tasks it lost.

Services queue work through a NamedTask, by the task's registered name: they never import the
Celery entry points (the tasks import the services), so no service depends on another wing's
tasks, and a task keeps its name across code moves (tasks already queued in Redis still run).

A request whose work needs a task checks the queue before it stores anything: while Redis is
down it then changes nothing and answers 503 saying why, instead of storing rows whose task
can never be sent and failing with a bare 500.
"""

from celery import current_app
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError


class QueueUnavailable(Exception):
    """The broker did not accept a connection."""


class NamedTask:
    """A Celery task known by its registered name: `delay(*args)` and `apply_async(args,
    countdown)` send it through the broker of the panel's Celery app (the current app) to a
    worker, routed by name (settings.CELERY_TASK_ROUTES). Unlike the task's own methods they
    take positional arguments only, never run it in this process, and cannot check the
    arguments against the task's signature: tests/test_task_names.py checks the names."""

    def __init__(self, name):
        self.name = name

    def delay(self, *args):
        return self.apply_async(args)

    def apply_async(self, args=(), countdown=None):
        return current_app.send_task(self.name, args=tuple(args), countdown=countdown)

    def __repr__(self):
        return f"NamedTask({self.name!r})"


def require_reachable():
    """Raise QueueUnavailable unless the broker accepts a connection (one attempt, no retries)."""
    try:
        with current_app.connection_for_write() as connection:
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
