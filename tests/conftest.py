"""Fixtures shared by the unit tests of the UI: two users, their clients, and the one
seam where work would be queued (nothing reaches Celery). Also: a fast password hasher, and
on PostgreSQL only the tests that reach the database (see pytest_collection_modifyitems)."""

import os
from types import SimpleNamespace
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import get_hashers
from django.test import TransactionTestCase
from django.test import Client
from django.utils import translation

from tests.support.webhook_receiver import WebhookReceiver

# Fixtures through which a test reaches the database. pytest-django refuses database access to
# a test that requests none of them (and has no django_db marker), so a test without them
# behaves the same on every database engine. django_db_setup covers module-scoped fixtures that
# unblock the test database themselves (tests/test_renewal_sweep.py, tests/test_list_scale.py).
# Not django_db_blocker: pytest-django's autouse _django_setup_unittest requests it for every test.
_DATABASE_FIXTURES = frozenset({
    "db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
    "django_db_setup", "live_server",
})


def pytest_configure(config):
    """Unit tests hash passwords with MD5: the production hasher (PBKDF2, a million rounds)
    costs about a second per create_user or login on this machine's shared cores, and no unit
    test is about the hash itself (the end-to-end stacks keep the production settings)."""
    django_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_hashers.cache_clear()


def uses_database(item) -> bool:
    if item.get_closest_marker("django_db") or _DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    cls = getattr(item, "cls", None)
    return bool(cls and issubclass(cls, TransactionTestCase))


def pytest_collection_modifyitems(config, items):
    """The second pass of `make test` runs the unit tests on PostgreSQL to find what behaves
    differently there (locking, transactions, sequences, JSON, case, constraints). A test that
    never reaches the database cannot: on PostgreSQL it is deselected (the summary counts it).
    CERTPANEL_TEST_EVERYTHING_ON_POSTGRES=1 runs them all anyway."""
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return
    if os.environ.get("CERTPANEL_TEST_EVERYTHING_ON_POSTGRES") == "1":
        return
    selected, deselected = [], []
    for item in items:
        (selected if uses_database(item) else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


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
