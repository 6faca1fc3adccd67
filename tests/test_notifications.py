"""Notification channels: alerts reach a real (local) webhook through apprise, only the
owner's channels get them, and the channel URL with its token never leaks."""

import datetime
import logging
from contextlib import contextmanager

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from certs import notifications, tasks
from certs.models import AcmeAccount, Certificate, CertificateVersion, NotificationChannel, Order
from certs.renewal import policy
from panel.models import PanelSettings, Site
from tests.support.ports import free_port
from tests.support.webhook_receiver import TOKEN

CA_ERROR = "urn:ietf:params:acme:error:rateLimited: too many certificates (5) already issued for this exact set"


@pytest.fixture(autouse=True)
def loopback_allowed(db):
    """The receiver listens on loopback, which users' channels may reach only once an administrator
    allow-lists it (tests/test_outbound.py tests the refusal)."""
    PanelSettings.objects.update_or_create(pk=1, defaults={"outbound_allow_list": "127.0.0.1"})


@pytest.fixture
def sent_at_once(monkeypatch):
    """The enqueue seam runs the Celery task in-process, as a worker would."""
    monkeypatch.setattr(notifications, "enqueue", lambda *args: tasks.send_notification(*args))


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """As if the test's transaction committed, for certs.notifications' hooks only: what
    else the same code queues on commit (deploys, install targets, ARI) is not tested here."""

    @contextmanager
    def commit():
        with django_capture_on_commit_callbacks() as callbacks:
            yield
        for callback in callbacks:
            if callback.__module__ == notifications.__name__:
                callback()

    return commit


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def channel_for(user, url, **fields):
    return NotificationChannel.objects.create(owner=user, name=f"{user.username}'s hook", url=url, **fields)


@pytest.fixture
def certificate(alice):
    account = AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/dir", account_key="x",
                                         account_url="https://ca.test/acct/1")
    cert = Certificate.objects.create(owner=alice, account=account, domains=["a.example.com", "b.example.com"],
                                      status=Certificate.Status.VALID)
    now = timezone.now()
    version = CertificateVersion.objects.create(
        certificate=cert, cert_pem="-", chain_pem="-", private_key="-", serial="1a2b", issuer="CN=Test CA",
        not_before=now - datetime.timedelta(days=80), not_after=now + datetime.timedelta(days=10),
    )
    cert.current_version = version
    cert.save()
    Order.objects.create(owner=alice, certificate=cert, is_renewal=True)
    return cert


def fail_renewal(cert, message):
    """What certs.orders does when a renewal order fails: inside the order's transaction."""
    with transaction.atomic():
        policy.failed(cert, message)
        cert.last_error = message
        cert.save(update_fields=["last_error", "renewal_failures", "next_renewal_at"])


# --- the API and the test action


def test_the_test_action_delivers_a_message_to_the_webhook(admin_user, receiver):
    api = api_for(admin_user)  # the receiver listens on loopback: admins only (tests/test_roles.py)
    created = api.post("/api/v1/notification-channels/", {"name": "ops", "url": receiver.url("alice")},
                       format="json")
    assert created.status_code == 201, created.content
    assert created.json()["events"] == ["renewal_failed", "expiring", "renewed", "config_rejected"]

    answer = api.post(f"/api/v1/notification-channels/{created.json()['id']}/test/")

    assert answer.status_code == 200
    assert answer.json()["ok"] is True
    [payload] = receiver.to("alice")
    assert payload["title"] == "CertPanel test notification"
    assert "ops" in payload["message"]
    channel = api.get(f"/api/v1/notification-channels/{created.json()['id']}/").json()
    assert channel["last_sent_at"] and channel["last_error"] == ""


def test_a_failed_test_says_why_and_is_recorded_on_the_channel(alice, receiver):
    receiver.status = 500
    channel = channel_for(alice, receiver.url("alice"))

    answer = api_for(alice).post(f"/api/v1/notification-channels/{channel.pk}/test/").json()

    assert answer["ok"] is False and "500" in answer["message"]
    channel.refresh_from_db()
    assert channel.last_error == answer["message"] and channel.last_sent_at is None


def test_django_mail_sends_through_the_panels_mail_settings(alice, mailoutbox):
    channel = channel_for(alice, "django-mail://ops@example.com, oncall@example.com")

    answer = api_for(alice).post(f"/api/v1/notification-channels/{channel.pk}/test/").json()

    assert answer["ok"] is True
    [message] = mailoutbox
    assert message.subject == "CertPanel test notification"
    assert message.to == ["ops@example.com", "oncall@example.com"]


@pytest.mark.parametrize("url", ["not a url", f"nosuchservice://{TOKEN}", "json://", "django-mail://not-an-address"])
def test_it_rejects_a_url_apprise_cannot_use_without_repeating_it(alice, url):
    answer = api_for(alice).post("/api/v1/notification-channels/", {"name": "x", "url": url}, format="json")
    assert answer.status_code == 400
    assert "url" in answer.json()
    assert TOKEN not in answer.content.decode()
    assert not NotificationChannel.objects.exists()


def test_it_rejects_an_unknown_event(alice, receiver):
    answer = api_for(alice).post("/api/v1/notification-channels/", {
        "name": "x", "url": receiver.url("alice"), "events": ["renewed", "lunch"]}, format="json")
    assert answer.status_code == 400 and "events" in answer.json()


def test_another_users_channel_is_not_there(alice, bob, receiver):
    channel = channel_for(alice, receiver.url("alice"))
    api = api_for(bob)
    assert api.get("/api/v1/notification-channels/").json()["results"] == []
    assert api.get(f"/api/v1/notification-channels/{channel.pk}/").status_code == 404
    assert api.post(f"/api/v1/notification-channels/{channel.pk}/test/").status_code == 404
    assert api.delete(f"/api/v1/notification-channels/{channel.pk}/").status_code == 404
    assert receiver.received == []
    assert api_for(alice).delete(f"/api/v1/notification-channels/{channel.pk}/").status_code == 204
    assert not NotificationChannel.objects.exists()


def test_the_channel_url_is_in_no_response_no_log_and_no_table(admin_user, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(1, logger="apprise")  # apprise's TRACE level and everything above it
    api = api_for(admin_user)  # the receiver listens on loopback: admins only
    url = receiver.url("alice").replace("json://", "json://user:pass-" + TOKEN + "@")
    created = api.post("/api/v1/notification-channels/", {"name": "ops", "url": url}, format="json")
    assert created.status_code == 201, created.content
    channel_id = created.json()["id"]
    answers = [created, api.get("/api/v1/notification-channels/"), api.get(f"/api/v1/notification-channels/{channel_id}/"),
               api.post(f"/api/v1/notification-channels/{channel_id}/test/")]
    receiver.status = 500
    answers.append(api.post(f"/api/v1/notification-channels/{channel_id}/test/"))
    # Nobody listening: requests' error names the path it failed on.
    NotificationChannel.objects.filter(pk=channel_id).update(url=url.replace(str(receiver.server.server_port),
                                                                             str(free_port())))
    answers.append(api.post(f"/api/v1/notification-channels/{channel_id}/test/"))
    answers.append(api.get(f"/api/v1/notification-channels/{channel_id}/"))

    assert [a.json()["ok"] for a in answers[3:6]] == [True, False, False]
    assert not [a for a in answers if TOKEN in a.content.decode()]
    # apprise did log (the URL it posts to, at DEBUG), but only with the token blanked out.
    assert [r for r in caplog.records if r.name == "apprise" and r.levelno <= logging.DEBUG]
    assert notifications.REDACTED in caplog.text
    assert TOKEN not in caplog.text
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            assert TOKEN not in repr(cursor.fetchall()), table
    assert NotificationChannel.objects.get(pk=channel_id).url.endswith(TOKEN)  # ...and yet readable


# --- events


def test_a_failed_renewal_alerts_the_owner_with_the_cas_error(certificate, bob, receiver, sent_at_once, committed):
    alice = certificate.owner
    channel_for(alice, receiver.url("alice"))
    channel_for(alice, receiver.url("alice-renewed-only"), events=["renewed"])
    channel_for(alice, receiver.url("alice-disabled"), enabled=False)
    channel_for(bob, receiver.url("bob"))

    with committed():
        fail_renewal(certificate, CA_ERROR)

    [payload] = receiver.to("alice")
    assert payload["title"] == "Renewal failed: a.example.com, b.example.com"
    assert CA_ERROR in payload["message"]
    certificate.refresh_from_db()
    assert f"Next attempt: {certificate.next_renewal_at:%Y-%m-%d %H:%M} UTC" in payload["message"]
    assert [path for path, _ in receiver.received] == [f"/hook/alice/{TOKEN}"]


def test_nothing_is_sent_for_a_failure_that_was_rolled_back(certificate, receiver, sent_at_once, committed):
    channel_for(certificate.owner, receiver.url("alice"))
    with committed(), pytest.raises(RuntimeError), transaction.atomic():
        policy.failed(certificate, CA_ERROR)
        raise RuntimeError("the order's transaction failed after all")
    assert receiver.received == []


def test_a_channel_that_cannot_be_reached_does_not_break_the_renewal(certificate, sent_at_once, committed):
    channel = channel_for(certificate.owner, f"json://127.0.0.1:{free_port()}/hook/{TOKEN}")
    with committed():
        fail_renewal(certificate, CA_ERROR)
    certificate.refresh_from_db()
    assert certificate.renewal_failures == 1
    channel.refresh_from_db()
    assert channel.last_error and channel.last_sent_at is None


def test_a_renewal_is_announced_and_a_first_issuance_is_not(certificate, receiver, sent_at_once, committed):
    channel_for(certificate.owner, receiver.url("alice"))
    version = certificate.current_version
    with committed():
        policy.issued(certificate, version)
    assert receiver.received == []

    with committed():
        policy.issued(certificate, version, is_renewal=True)

    [payload] = receiver.to("alice")
    assert payload["title"] == "Renewed: a.example.com, b.example.com"
    assert "serial 1a2b" in payload["message"]


def test_expiring_certificates_are_announced_once_a_day(certificate, receiver, sent_at_once, monkeypatch, settings,
                                                        committed):
    settings.EXPIRY_ALERT_DAYS = 14
    monkeypatch.setattr(notifications, "cache", LocMemCache("expiry-alerts-test", {}))
    channel_for(certificate.owner, receiver.url("alice"))
    later = Certificate.objects.create(owner=certificate.owner, account=certificate.account,
                                       domains=["later.example.com"])
    later.current_version = CertificateVersion.objects.create(
        certificate=later, cert_pem="-", chain_pem="-", private_key="-", serial="2", issuer="CN=Test CA",
        not_before=timezone.now(), not_after=timezone.now() + datetime.timedelta(days=60))
    later.save()
    now = timezone.now().replace(hour=12, minute=0)  # an hour later is still the same day

    with committed():
        assert notifications.expiry_alerts(now) == [certificate.pk]
        assert notifications.expiry_alerts(now + datetime.timedelta(hours=1)) == []
    [payload] = receiver.to("alice")
    assert payload["title"] == "Expiring: a.example.com, b.example.com"
    assert "expires in 9 days" in payload["message"] or "expires in 10 days" in payload["message"]

    # The next day it is still expiring: announced again. Once renewed, never again.
    with committed():
        assert notifications.expiry_alerts(now + datetime.timedelta(days=1)) == [certificate.pk]
    CertificateVersion.objects.filter(pk=certificate.current_version_id).update(
        not_after=now + datetime.timedelta(days=90))
    assert notifications.expiry_alerts(now + datetime.timedelta(days=2)) == []
    assert len(receiver.to("alice")) == 2


def test_a_site_config_nginx_rejects_is_announced(alice, receiver, sent_at_once, settings, tmp_path, monkeypatch,
                                                  committed):
    from panel.deployment import dispatch
    from panel.deployment.nginx import apply

    prefix = tmp_path / "nginx"
    settings.NGINX_PRIVATE, settings.NGINX_PREFIX = True, prefix
    settings.NGINX_CONF, settings.NGINX_VHOST_DIR = prefix / "nginx.conf", prefix / "sites"
    settings.NGINX_HTTP_PORT, settings.NGINX_HTTPS_PORT = free_port(), free_port()
    settings.ACME_CHALLENGE_DIR, settings.CERT_DEPLOY_DIR = tmp_path / "challenges", tmp_path / "certs"
    monkeypatch.setattr(apply, "request_reload", lambda: None)
    apply.write_private_main_config()
    channel_for(alice, receiver.url("alice"))
    site = Site.objects.create(owner=alice, domains=["c.example.com"], proxy_pass="http://nowhere.invalid:1")

    with committed():
        assert dispatch.deploy_site(site.pk) is False

    [payload] = receiver.to("alice")
    assert payload["title"] == "nginx rejected the config of c.example.com"
    assert "nowhere.invalid" in payload["message"]
