"""Fixtures shared by the unit tests of the UI: two users, their clients, and the one
seam where work would be queued (nothing reaches Celery)."""

from types import SimpleNamespace
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import translation

from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture(autouse=True)
def english_until_asked():
    """Each test starts in the default language: a page requested in Chinese leaves Chinese
    active in the thread (LocaleMiddleware does not reset it), and the next test on this
    worker would read its texts in Chinese."""
    translation.activate("en")
    yield
    translation.activate("en")


@pytest.fixture(autouse=True)
def home_root(settings, tmp_path):
    """Each test's users get their homes (panel.security.homes) in its own directory."""
    settings.HOME_ROOT = tmp_path / "home"
    return settings.HOME_ROOT


@pytest.fixture
def queued():
    with mock.patch("certs.orders.enqueue") as enqueue, mock.patch("panel.deployment.dispatch.APPLY_SITE") as apply_site:
        yield SimpleNamespace(enqueue=enqueue, apply_site=apply_site)


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", password="pw-bob-123")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(alice, bob):
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def receiver():
    """A webhook endpoint on a free loopback port (tests/support/webhook_receiver.py)."""
    receiver = WebhookReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
