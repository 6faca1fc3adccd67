import logging
import os

from celery import Celery
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "panel.settings")

app = Celery("panel")
app.config_from_object("django.conf:settings", namespace="CELERY")  # tasks: settings.CELERY_IMPORTS

log = logging.getLogger(__name__)
_restore_unacked = kombu_redis.QoS.restore_unacked


def _restore_unacked_while_connected(qos, client=None):
    """kombu 5.7: when Redis goes away while the worker holds unacknowledged tasks, closing the
    channel puts them back through a connection already torn down and raises AttributeError,
    which Celery takes as unrecoverable: the worker exits instead of reconnecting (seen in
    tests/e2e/test_faults_worker.py). Without a connection there is nothing to put them back
    into; the database sweeps queue lost orders and nginx applies again."""
    if client is None and getattr(qos.channel.connection, "client", None) is None:
        log.warning("Broker connection gone: %d unacknowledged task(s) not put back", len(qos._delivered))
        qos._delivered.clear()
        return None
    return _restore_unacked(qos, client)


kombu_redis.QoS.restore_unacked = _restore_unacked_while_connected
