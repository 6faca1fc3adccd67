"""The Celery worker outlives its broker going away (panel/celery.py's guard around kombu)."""

from django.conf import settings
from kombu import Connection

import panel.celery  # noqa: F401  (installs the guard, as the worker does on start)


def test_a_channel_closed_after_its_connection_with_tasks_in_hand_does_not_end_the_worker():
    # What Celery does when Redis disappears while the worker holds unacknowledged tasks: the
    # connection is torn down, then its channels are closed and try to put the tasks back.
    connection = Connection(settings.CELERY_BROKER_URL)
    channel = connection.channel()
    channel.qos._delivered["in-hand"] = object()
    connection._do_close_transport()

    channel.close()  # kombu 5.7 alone: AttributeError, and Celery stops the worker

    assert channel.closed and not channel.qos._delivered
