import logging
import os

from celery import Celery, signals
from celery.app.routes import MapRoute
from kombu.transport import redis as kombu_redis

from panel.toolkit.privilege import running_as_root_for_service

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


# --- the root deploy worker runs deploy tasks only

ROOT_QUEUE = "deploy"


def queue_of(task_name, routes, default_queue) -> str:
    """The queue Celery routes `task_name` to by `routes` (settings.CELERY_TASK_ROUTES: an exact
    name first, then the first matching pattern); unrouted, `default_queue`."""
    route = MapRoute(routes or {})(task_name)
    queue = (route or {}).get("queue") or default_queue
    return getattr(queue, "name", queue)


def keep_only_queue(tasks, routes, default_queue, queue=ROOT_QUEUE) -> list[str]:
    """Unregister from `tasks` (a task registry) every task not routed to `queue`, Celery's own
    (celery.*) kept; returns the names removed. A message naming a removed task is then rejected
    by the worker, never run."""
    removed = sorted(name for name in list(tasks) if not name.startswith("celery.")
                     and queue_of(name, routes, default_queue) != queue)
    for name in removed:
        tasks.pop(name)
    return removed


@signals.worker_init.connect
def _root_worker_runs_deploy_tasks_only(sender=None, **kwargs):
    """The installed split's root worker takes tasks from the deploy queue, but Redis is writable
    by the service user: whatever it finds there, it runs only the tasks routed to that queue."""
    if not running_as_root_for_service():
        return
    worker_app = getattr(sender, "app", None) or app
    removed = keep_only_queue(worker_app.tasks, worker_app.conf.task_routes, worker_app.conf.task_default_queue)
    log.info("root worker: %d task(s) not routed to the %s queue are refused: %s",
             len(removed), ROOT_QUEUE, ", ".join(removed))
