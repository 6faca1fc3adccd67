"""The notification pages: add a channel, send a test, delete with confirmation; the URL
(it holds tokens) is never shown back, and another user's channel answers 404."""

import re
import socket
import time

import pytest
from django.conf import settings
from django.urls import reverse

from certs import notifications
from certs.models import NotificationChannel, NotificationEvent
from panel.models import PanelSettings
from tests.support.webhook_receiver import TOKEN


@pytest.fixture
def channel(alice, receiver):
    return NotificationChannel.objects.create(owner=alice, name="Ops webhook", url=receiver.url("alice"))


@pytest.fixture
def zh_client(alice_client):
    alice_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return alice_client


def page_text(response):
    assert response.status_code == 200
    return response.content.decode()


def assert_no_secret(html, url):
    assert url not in html and TOKEN not in html


def test_it_adds_a_channel_and_never_shows_its_url_again(alice_client, alice):
    url = f"json://hooks.example.net/hook/alice/{TOKEN}"  # a user's channel cannot target loopback
    form = page_text(alice_client.get(reverse("ui:notification-add")))
    for event in NotificationEvent.values:  # every event is ticked to start with
        assert re.search(rf'<input type="checkbox" name="events" value="{event}"[^>]*checked', form)

    response = alice_client.post(reverse("ui:notification-add"), {
        "name": "Ops webhook", "url": url, "events": ["renewal_failed", "expiring"]})
    assert response["Location"] == reverse("ui:notification-list")
    channel = NotificationChannel.objects.get()
    assert (channel.owner, channel.name, channel.url, channel.events) == (
        alice, "Ops webhook", url, ["renewal_failed", "expiring"])

    listing = page_text(alice_client.get(reverse("ui:notification-list")))
    assert "Ops webhook" in listing and "json://[redacted]" in listing
    assert "Renewal failed, Expiring without a successful renewal" in listing
    assert_no_secret(listing, url)
    for page in (reverse("ui:notification-delete", args=[channel.pk]), reverse("ui:dashboard"),
                 reverse("ui:notification-add")):
        assert_no_secret(page_text(alice_client.get(page)), url)


def test_it_shows_errors_inline_and_never_echoes_the_url(alice_client):
    secret_url = f"nosuchservice://{TOKEN}@example.com/"
    response = alice_client.post(reverse("ui:notification-add"), {"name": "", "url": secret_url})
    html = page_text(response)
    assert re.search(r'id="id_url_error"[^>]*>.*Apprise does not recognise this URL', html, re.S)
    assert re.search(r'id="id_name_error"', html) and re.search(r'id="id_events_error"', html)
    assert_no_secret(html, secret_url)
    assert not NotificationChannel.objects.exists()


def test_send_test_delivers_and_says_so(alice_client, channel, receiver):
    # The receiver is on loopback: a user's channel reaches it once an administrator allow-lists it.
    PanelSettings.objects.create(pk=1, outbound_allow_list="127.0.0.1")
    response = alice_client.post(reverse("ui:notification-test", args=[channel.pk]), follow=True)
    html = page_text(response)
    assert "Test message sent to “Ops webhook”." in html
    [payload] = receiver.to("alice")
    assert payload["title"] == "CertPanel test notification"
    channel.refresh_from_db()
    assert channel.last_sent_at is not None and channel.last_error == ""


def test_a_failed_test_shows_why_without_the_url(alice_client, channel, receiver):
    receiver.status = 500
    html = page_text(alice_client.post(reverse("ui:notification-test", args=[channel.pk]), follow=True))
    assert "“Ops webhook” did not work:" in html and "alert--error" in html
    channel.refresh_from_db()
    assert channel.last_error and channel.last_error in html  # the list shows the last result too
    assert_no_secret(html, channel.url)


@pytest.fixture
def silent_port():
    """A port that takes connections and the request, and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def test_send_test_shows_that_it_is_working(alice_client, channel):
    html = page_text(alice_client.get(reverse("ui:notification-list")))
    assert re.search(rf'<form method="post" action="{reverse("ui:notification-test", args=[channel.pk])}" '
                     r'data-busy="Sending…">', html)
    assert re.search(r'<script src="/static/js/busy\.js[^"]*" defer></script>', html)
    busy = (settings.BASE_DIR / "static" / "js" / "busy.js").read_text()
    assert "disabled = true" in busy and 'getAttribute("data-busy")' in busy


def test_a_test_without_an_answer_gives_up_in_time_and_says_so(zh_client, alice, silent_port, monkeypatch):
    PanelSettings.objects.create(pk=1, outbound_allow_list="127.0.0.1")
    channel = NotificationChannel.objects.create(owner=alice, name="Slow hook",
                                                 url=f"json://127.0.0.1:{silent_port}/hook/{TOKEN}")
    monkeypatch.setattr(notifications, "TEST_TIMEOUT_SECONDS", 1)

    started = time.monotonic()
    response = zh_client.post(reverse("ui:notification-test", args=[channel.pk]), follow=True)

    assert time.monotonic() - started < 5  # the worker is not held until the service answers
    html = page_text(response)
    assert "“Slow hook”测试未通过：1 秒内没有应答：该服务未及时回复。" in html and "alert--error" in html
    channel.refresh_from_db()
    assert channel.last_error.startswith("1 秒内没有应答") and channel.last_sent_at is None
    assert_no_secret(html, channel.url)


def test_the_test_action_needs_a_post(alice_client, channel, receiver):
    assert alice_client.get(reverse("ui:notification-test", args=[channel.pk])).status_code == 405
    assert receiver.received == []


def test_delete_asks_first_then_deletes(alice_client, channel):
    url = reverse("ui:notification-delete", args=[channel.pk])
    confirm = page_text(alice_client.get(url))
    assert "Delete the notification channel “Ops webhook”?" in confirm and 'method="post"' in confirm
    assert NotificationChannel.objects.filter(pk=channel.pk).exists()
    response = alice_client.post(url, follow=True)
    assert "Notification channel “Ops webhook” deleted." in page_text(response)
    assert not NotificationChannel.objects.exists()


def test_bob_cannot_see_test_or_delete_alices_channel(bob_client, channel, receiver):
    assert "Ops webhook" not in page_text(bob_client.get(reverse("ui:notification-list")))
    assert bob_client.post(reverse("ui:notification-test", args=[channel.pk])).status_code == 404
    assert bob_client.get(reverse("ui:notification-delete", args=[channel.pk])).status_code == 404
    assert bob_client.post(reverse("ui:notification-delete", args=[channel.pk])).status_code == 404
    assert NotificationChannel.objects.filter(pk=channel.pk).exists()
    assert receiver.received == []


@pytest.mark.parametrize("name", ["ui:notification-list", "ui:notification-add"])
def test_pages_ask_anonymous_users_to_log_in(client, db, name):
    assert client.get(reverse(name))["Location"].startswith(reverse("login"))
