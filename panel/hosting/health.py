"""Is the panel working? The checks /healthz runs for load balancers and monitors: the database,
Redis, the Celery workers (a heartbeat beat sends them every 30 s) and nginx.

Each check runs in its own thread with a deadline, so the answer comes within about two seconds
even when Redis or the database hangs. A check says "ok" or a short word for what is wrong; never
an error text, a path or an address.
"""

import socket
import threading
import time
from pathlib import Path

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from panel.deployment.nginx import apply

HEARTBEAT_KEY = "worker-heartbeat:{queue}"
HEARTBEAT_QUEUES = ("acme", "deploy")
CHECK_SECONDS = 1.5
LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def record_heartbeat(queue):
    cache.set(HEARTBEAT_KEY.format(queue=queue), time.time(), timeout=24 * 3600)


def check_database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()  # this thread's own connection: nothing else will close it
    return "ok"


def check_redis():
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        return "ok" if client.ping() else "fail"
    finally:
        client.close()


def check_worker():
    """ok when a worker of every queue took its heartbeat within HEARTBEAT_STALE_SECONDS."""
    beats = cache.get_many([HEARTBEAT_KEY.format(queue=queue) for queue in HEARTBEAT_QUEUES])
    now = time.time()
    for queue in HEARTBEAT_QUEUES:
        beat = beats.get(HEARTBEAT_KEY.format(queue=queue))
        if beat is None or now - beat > settings.HEARTBEAT_STALE_SECONDS:
            return "stale"
    return "ok"


def check_nginx():
    """The private nginx: its master process is alive. The system's: its HTTP port accepts a
    connection on loopback."""
    if settings.NGINX_PRIVATE:
        try:
            pid = int(apply.private_pid_file().read_text().strip())
            alive = b"nginx" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            alive = False
        return "ok" if alive else "fail"
    host = apply.layout().listen_hosts()[0]
    host = LOOPBACK_FOR.get(host, host)  # every address: ask on loopback
    with socket.create_connection((host, settings.NGINX_HTTP_PORT), timeout=1):
        return "ok"


CHECKS = {"database": check_database, "redis": check_redis, "worker": check_worker, "nginx": check_nginx}


def run_checks(deadline_seconds=CHECK_SECONDS) -> dict[str, str]:
    """{check: "ok" | "fail" | "stale" | "timeout"}, all run at once, none waited for longer
    than `deadline_seconds` in all."""
    results = {}

    def run(name, check):
        try:
            results[name] = check()
        except Exception:  # noqa: BLE001 - any trouble is a failed check; its text stays here
            results[name] = "fail"

    threads = [threading.Thread(target=run, args=item, daemon=True, name=f"healthz-{item[0]}")
               for item in CHECKS.items()]
    for thread in threads:
        thread.start()
    end = time.monotonic() + deadline_seconds
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    return {name: results.get(name, "timeout") for name in CHECKS}
