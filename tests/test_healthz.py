"""/healthz: database, Redis, worker heartbeat and nginx, for load balancers and monitors."""

import socket
import threading
import time

import pytest
from django.core.cache import cache

from panel.deployment import tasks
from panel.hosting import health
from tests.support.ports import free_port


@pytest.fixture
def listener():
    """A loopback port that accepts connections and never answers: a hung service."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def system_nginx(settings, listener):
    """As with the system nginx: its HTTP port on loopback accepts connections."""
    settings.NGINX_PRIVATE = False
    settings.NGINX_LISTEN_ADDRESS = ""
    settings.NGINX_HTTP_PORT = listener
    return settings


@pytest.fixture
def beats():
    for queue in health.HEARTBEAT_QUEUES:
        tasks.worker_heartbeat(queue)  # what beat sends each queue's workers every 30 s
    yield
    cache.delete_many([health.HEARTBEAT_KEY.format(queue=queue) for queue in health.HEARTBEAT_QUEUES])


@pytest.mark.django_db
def test_all_checks_pass(client, system_nginx, beats):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok", "worker": "ok",
                                                          "nginx": "ok"}}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_a_stale_worker_and_a_dead_nginx_fail(client, settings, system_nginx, beats):
    settings.HEARTBEAT_STALE_SECONDS = 150
    cache.set(health.HEARTBEAT_KEY.format(queue="deploy"), time.time() - 200)
    settings.NGINX_HTTP_PORT = free_port()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "fail", "checks": {"database": "ok", "redis": "ok", "worker": "stale",
                                                            "nginx": "fail"}}


@pytest.mark.django_db
def test_the_private_nginx_is_checked_by_its_pid(client, settings, tmp_path, beats):
    settings.NGINX_PRIVATE = True
    settings.NGINX_PREFIX = tmp_path
    (tmp_path / "nginx.pid").write_text("1\n")  # not nginx
    assert client.get("/healthz").json()["checks"]["nginx"] == "fail"


@pytest.mark.django_db
def test_a_hung_redis_answers_within_two_seconds_without_saying_where_it_is(client, settings, system_nginx, beats,
                                                                            listener):
    settings.REDIS_URL = f"redis://:s3cret-pass@127.0.0.1:{listener}/0"
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 2.5
    assert response.status_code == 503 and response.json()["checks"]["redis"] in ("fail", "timeout")
    assert str(listener).encode() not in response.content and b"s3cret" not in response.content


def test_a_check_that_hangs_is_a_timeout(monkeypatch):
    hang = threading.Event()
    monkeypatch.setitem(health.CHECKS, "database", lambda: hang.wait(10) and "ok")
    monkeypatch.setitem(health.CHECKS, "redis", lambda: "ok")
    monkeypatch.setitem(health.CHECKS, "worker", lambda: "ok")
    monkeypatch.setitem(health.CHECKS, "nginx", lambda: 1 / 0)
    started = time.monotonic()
    assert health.run_checks(0.3) == {"database": "timeout", "redis": "ok", "worker": "ok", "nginx": "fail"}
    assert time.monotonic() - started < 1
    hang.set()


def test_heartbeats_go_to_each_queue_every_30_seconds(settings):
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "panel.tasks.worker_heartbeat"]
    assert sorted(e["options"]["queue"] for e in entries) == ["acme", "deploy"]
    assert all(e["schedule"] == 30.0 and e["args"] == (e["options"]["queue"],) for e in entries)
