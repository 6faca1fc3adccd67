"""Login security: lockout after repeated failures, two-factor authentication with recovery
codes, the administrator's require-2FA switch, password change and cookie flags."""

import datetime
import ipaddress
import os
import re
import subprocess
import sys
from base64 import b32encode
from io import StringIO

import pyotp
import pytest
from axes.models import AccessAttempt, AccessAttemptExpiration, AccessFailureLog, AccessLog
from django.conf import settings
from django.db.models import F
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from panel.models import AuthenticatorDevice, PanelSettings, RecoveryCode, RecoveryCodeDevice

LOCKED = "This account is locked after too many failed logins"


def log_in(client, username, password, **extra):
    return client.post(reverse("login"), {"username": username, "password": password, "next": "/sites/"}, **extra)


def logged_in(client):
    return client.get(reverse("ui:site-list")).status_code == 200


def text(response):
    return response.content.decode()


def app_code(device, offset_steps=0):
    """What the user's authenticator app shows, computed independently of django-otp."""
    totp = pyotp.TOTP(b32encode(device.bin_key).decode())
    return totp.at(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=30 * offset_steps))


@pytest.fixture
def alice_2fa(alice):
    device = AuthenticatorDevice.objects.create(user=alice, name="phone", confirmed=True)
    recovery = RecoveryCodeDevice.objects.create(user=alice, name="recovery")
    RecoveryCode.objects.bulk_create(RecoveryCode(device=recovery, code=code) for code in ("aaaa2222", "bbbb3333"))
    return device


@pytest.fixture
def admin(db):
    return get_user_model().objects.create_superuser("root", password="pw-root-123")


def recovery_codes():
    return set(RecoveryCode.objects.values_list("code", flat=True))  # decrypted


# --- lockout


def test_the_sixth_wrong_password_locks_the_account(client, alice, bob):
    for attempt in range(5):
        response = log_in(client, "alice", f"wrong-{attempt}")
        assert response.status_code == 200 and LOCKED not in text(response)
        assert "alert--error" in text(response)
    response = log_in(client, "alice", "wrong-6")
    assert response.status_code == 429
    assert f"{LOCKED}. Try again in 15 minutes." in text(response)

    response = log_in(client, "alice", "pw-alice-123")
    assert response.status_code == 429 and LOCKED in text(response)
    assert not logged_in(client)

    other = Client()
    assert log_in(other, "bob", "pw-bob-123").status_code == 302 and logged_in(other)


def test_failures_from_other_browsers_at_one_address_count_together(client, alice):
    for attempt in range(6):
        response = log_in(client, "alice", "wrong", REMOTE_ADDR="198.51.100.1",
                          HTTP_USER_AGENT=f"agent-{attempt}")
    assert response.status_code == 429
    assert LOCKED in text(log_in(Client(), "alice", "pw-alice-123", REMOTE_ADDR="198.51.100.1"))


def test_a_login_before_the_limit_starts_the_count_again(client, alice):
    for _ in range(5):
        log_in(client, "alice", "wrong")
    assert log_in(client, "alice", "pw-alice-123").status_code == 302
    client.post(reverse("logout"))
    for _ in range(5):
        response = log_in(client, "alice", "wrong")
    assert response.status_code == 200 and LOCKED not in text(response)


def test_the_lock_ends_after_the_window(client, alice):
    for _ in range(6):
        log_in(client, "alice", "wrong")
    # Tries during the lock do not extend it: the lock still ends 15 minutes after the 6th failure.
    log_in(client, "alice", "wrong")
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - datetime.timedelta(minutes=14))
    assert "Try again in 1 minute." in text(log_in(client, "alice", "pw-alice-123"))
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - datetime.timedelta(minutes=2))
    assert log_in(client, "alice", "pw-alice-123").status_code == 302 and logged_in(client)


STRANGER = {"REMOTE_ADDR": "198.51.100.7"}
ADMIN_DESK = {"REMOTE_ADDR": "203.0.113.9"}


def minutes_pass(minutes):
    """Every time axes keeps (failures, their expiry, the failure and login logs) moves back."""
    delta = datetime.timedelta(minutes=minutes)
    for model, field in ((AccessAttempt, "attempt_time"), (AccessAttemptExpiration, "expires_at"),
                         (AccessFailureLog, "attempt_time"), (AccessLog, "attempt_time")):
        model.objects.update(**{field: F(field) - delta})


def test_a_stranger_cannot_lock_the_administrator_out(admin):
    stranger = Client()
    for attempt in range(6):
        response = log_in(stranger, "root", f"guess-{attempt}", **STRANGER)
    assert response.status_code == 429 and LOCKED in text(response)
    assert LOCKED in text(log_in(Client(), "root", "pw-root-123", HTTP_USER_AGENT="another", **STRANGER))
    desk = Client()
    assert log_in(desk, "root", "pw-root-123", **ADMIN_DESK).status_code == 302 and logged_in(desk)


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(admin):
    for attempt in range(6):
        log_in(Client(), "root", f"guess-{attempt}", HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}", **STRANGER)
    assert LOCKED in text(log_in(Client(), "root", "pw-root-123", HTTP_X_FORWARDED_FOR="192.0.2.99", **STRANGER))


@override_settings(TRUSTED_PROXIES=[ipaddress.ip_network("10.0.0.0/8")])
def test_behind_a_trusted_proxy_the_lock_is_for_the_clients_address(admin):
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for attempt in range(6):
        response = log_in(Client(), "root", f"guess-{attempt}", HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy)
    assert response.status_code == 429
    assert LOCKED in text(log_in(Client(), "root", "pw-root-123", HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy))
    assert log_in(Client(), "root", "pw-root-123", HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy).status_code == 302


def test_each_consecutive_lockout_of_the_same_address_lasts_twice_as_long(admin):
    for lock_minutes in (15, 30, 60):
        for attempt in range(6):
            response = log_in(Client(), "root", f"guess-{attempt}", **STRANGER)
        assert f"{LOCKED}. Try again in {lock_minutes} minutes." in text(response)
        minutes_pass(lock_minutes - 1)
        log_in(Client(), "someone", "wrong", REMOTE_ADDR="192.0.2.50")  # cleans up expired attempts
        assert "Try again in 1 minute." in text(log_in(Client(), "root", "pw-root-123", **STRANGER))
        minutes_pass(2)
    # Only that address waits longer: the administrator's own first lockout is the usual one.
    for attempt in range(6):
        response = log_in(Client(), "root", f"typo-{attempt}", **ADMIN_DESK)
    assert f"{LOCKED}. Try again in 15 minutes." in text(response)


def test_a_successful_login_starts_the_delay_over(admin):
    for _ in range(6):
        log_in(Client(), "root", "typo", **ADMIN_DESK)
    minutes_pass(16)
    assert log_in(Client(), "root", "pw-root-123", **ADMIN_DESK).status_code == 302
    for _ in range(6):
        response = log_in(Client(), "root", "typo", **ADMIN_DESK)
    assert f"{LOCKED}. Try again in 15 minutes." in text(response)


def test_an_administrator_unlocks_with_axes_reset(client, alice):
    for _ in range(6):
        log_in(client, "alice", "wrong")
    call_command("axes_reset_username", "alice", stdout=StringIO())
    assert log_in(client, "alice", "pw-alice-123").status_code == 302


def test_api_tokens_keep_working_while_the_login_is_locked(client, alice):
    out = StringIO()
    call_command("create_api_token", "alice", stdout=out)
    for _ in range(6):
        log_in(client, "alice", "wrong")
    api = Client(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")
    assert api.get("/api/v1/sites/").status_code == 200


# --- two-factor login


def every_parameterless_page():
    def walk(patterns, prefix):
        for entry in patterns:
            route = prefix + str(entry.pattern).lstrip("^").rstrip("$")
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and not set(route) & set("<(\\?"):
                yield "/" + route
    # /healthz answers anyone (load balancers): it names no account and no object.
    skip = {"/login/", "/login/code/", "/logout/", "/i18n/setlang/", "/favicon.ico", "/api/schema/", "/healthz"}
    return sorted({url for url in walk(get_resolver().url_patterns, "") if url not in skip})


def test_with_2fa_a_password_alone_does_not_log_in(client, alice_2fa):
    response = log_in(client, "alice", "pw-alice-123")
    assert response["Location"] == reverse("login-verify")
    assert "_auth_user_id" not in client.session
    pages = every_parameterless_page()
    assert "/sites/" in pages and "/api/v1/sites/" in pages and "/security/" in pages
    for url in pages:
        status = client.get(url).status_code
        assert status in (302, 401, 403), f"{url} answered {status} after the password step alone"
    page = client.get(reverse("login-verify"))
    assert 'name="code"' in text(page) and 'autocomplete="one-time-code"' in text(page)


def test_the_code_from_the_app_logs_in(client, alice_2fa):
    log_in(client, "alice", "pw-alice-123")
    response = client.post(reverse("login-verify"), {"code": app_code(alice_2fa)})
    assert response["Location"] == "/sites/"
    assert logged_in(client)
    assert client.get(reverse("ui:security")).status_code == 200


def test_a_wrong_code_does_not_log_in(client, alice_2fa):
    log_in(client, "alice", "pw-alice-123")
    response = client.post(reverse("login-verify"), {"code": "000000" if app_code(alice_2fa) != "000000" else "111111"})
    assert response.status_code == 200 and "This code is not valid" in text(response)
    assert not logged_in(client)


def test_a_recovery_code_logs_in_once(client, alice_2fa):
    log_in(client, "alice", "pw-alice-123")
    assert client.post(reverse("login-verify"), {"code": "AAAA 2222"})["Location"] == "/sites/"
    assert logged_in(client)
    client.post(reverse("logout"))

    log_in(client, "alice", "pw-alice-123")
    response = client.post(reverse("login-verify"), {"code": "aaaa2222"})
    assert "This code is not valid" in text(response) and not logged_in(client)
    assert "bbbb3333" in recovery_codes()


def test_the_code_step_needs_a_fresh_password_step(client, alice_2fa):
    assert client.get(reverse("login-verify"))["Location"] == reverse("login")
    log_in(client, "alice", "pw-alice-123")
    session = client.session
    session["pending_login"]["since"] -= 301
    session.save()
    assert client.post(reverse("login-verify"), {"code": app_code(alice_2fa)})["Location"] == reverse("login")
    assert not logged_in(client)


def test_wrong_codes_count_towards_the_lockout(client, alice_2fa):
    log_in(client, "alice", "pw-alice-123")
    wrong = "000000" if app_code(alice_2fa) != "000000" else "111111"
    for _ in range(5):
        assert client.post(reverse("login-verify"), {"code": wrong}).status_code == 200
    response = client.post(reverse("login-verify"), {"code": wrong})
    assert response.status_code == 429 and LOCKED in text(response)
    assert client.get(reverse("login-verify"))["Location"] == reverse("login")
    assert LOCKED in text(log_in(client, "alice", "pw-alice-123"))


def test_a_session_from_before_2fa_was_turned_on_is_logged_out(alice_client, alice_2fa):
    response = alice_client.get(reverse("ui:site-list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert "_auth_user_id" not in alice_client.session


# --- the Security pages


def test_turning_on_2fa_needs_a_code_and_shows_ten_recovery_codes_once(alice_client, alice):
    page = text(alice_client.get(reverse("ui:two-factor-enable")))
    assert re.search(r'<div class="qr-code"><svg [^>]*xmlns="http://www.w3.org/2000/svg"', page)
    device = AuthenticatorDevice.objects.get(user=alice)
    secret = re.search(r'<p class="secret">([A-Z2-7 ]+)</p>', page).group(1)
    assert secret.replace(" ", "") == b32encode(device.bin_key).decode()
    assert text(alice_client.get(reverse("ui:two-factor-enable"))).count(secret) == 1  # same device on reload

    response = alice_client.post(reverse("ui:two-factor-enable"), {"code": "12345x"})
    assert "This code is not valid" in text(response)
    assert not AuthenticatorDevice.objects.get(user=alice).confirmed
    response = alice_client.post(reverse("ui:two-factor-enable"), {"code": app_code(device)})
    assert "wait a few seconds" in text(response)  # django-otp's pause after a wrong code
    a_few_seconds_pass(device)

    response = alice_client.post(reverse("ui:two-factor-enable"), {"code": app_code(device)})
    codes = re.findall(r"<li>([a-z2-7]{8})</li>", text(response))
    assert len(set(codes)) == 10
    assert AuthenticatorDevice.objects.get(user=alice).confirmed
    # This session passed the second factor by setting it up: it stays logged in.
    security = text(alice_client.get(reverse("ui:security")))
    assert "10 recovery codes left." in security
    assert not any(code in security for code in codes)

    other = Client()
    log_in(other, "alice", "pw-alice-123")
    assert other.post(reverse("login-verify"), {"code": codes[3]})["Location"] == "/sites/"
    assert "9 recovery codes left." in text(other.get(reverse("ui:security")))


def a_few_seconds_pass(device):
    type(device).objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=F("throttling_failure_timestamp") - datetime.timedelta(minutes=5))


def verified_client(user, device):
    client = Client()
    log_in(client, user.username, "pw-alice-123")
    client.post(reverse("login-verify"), {"code": app_code(device)})
    assert logged_in(client)
    return client


def test_turning_off_2fa_needs_a_current_code(alice, alice_2fa):
    client = verified_client(alice, alice_2fa)
    response = client.post(reverse("ui:two-factor-disable"), {"code": "zzzz9999"})
    assert "This code is not valid" in text(response)
    assert AuthenticatorDevice.objects.filter(user=alice).exists()
    a_few_seconds_pass(RecoveryCodeDevice.objects.get(user=alice))

    response = client.post(reverse("ui:two-factor-disable"), {"code": "bbbb3333"})
    assert response["Location"] == reverse("ui:security")
    assert not AuthenticatorDevice.objects.filter(user=alice).exists() and not RecoveryCode.objects.exists()
    assert log_in(Client(), "alice", "pw-alice-123")["Location"] == "/sites/"


def test_new_recovery_codes_replace_the_old_ones(alice, alice_2fa):
    client = verified_client(alice, alice_2fa)
    assert client.post(reverse("ui:recovery-codes"), {"code": "wrong"}).status_code == 200
    assert "aaaa2222" in recovery_codes()
    response = client.post(reverse("ui:recovery-codes"), {"code": app_code(alice_2fa, offset_steps=1)})
    codes = re.findall(r"<li>([a-z2-7]{8})</li>", text(response))
    assert len(codes) == 10
    assert recovery_codes() == set(codes)


def test_pages_show_security_to_everyone_and_settings_to_staff(alice_client, admin):
    page = text(alice_client.get(reverse("ui:site-list")))
    assert f'href="{reverse("ui:security")}"' in page and f'href="{reverse("ui:settings")}"' not in page
    assert alice_client.get(reverse("ui:settings")).status_code == 403
    assert alice_client.post(reverse("ui:settings"), {"require_two_factor": "on"}).status_code == 403
    assert not PanelSettings.load().require_two_factor

    staff = Client()
    staff.force_login(admin)
    assert f'href="{reverse("ui:settings")}"' in text(staff.get(reverse("ui:site-list")))


# --- require 2FA for everyone


def test_required_2fa_sends_a_user_without_it_to_set_it_up(admin, alice):
    staff = Client()
    staff.force_login(admin)
    assert staff.post(reverse("ui:settings"), {"require_two_factor": "on"})["Location"] == reverse("ui:settings")
    assert PanelSettings.load().require_two_factor

    client = Client()
    assert log_in(client, "alice", "pw-alice-123")["Location"] == "/sites/"
    enable = reverse("ui:two-factor-enable")
    for url in ("/sites/", "/certificates/", reverse("ui:security"), reverse("ui:password-change")):
        assert client.get(url)["Location"] == enable
    assert client.get("/api/v1/sites/").status_code == 403
    assert "An administrator requires two-factor authentication" in text(client.get(enable))

    device = AuthenticatorDevice.objects.get(user=alice)
    client.post(enable, {"code": app_code(device)})
    assert logged_in(client)
    assert client.post(reverse("logout")).status_code == 302


# --- password change


def test_changing_the_password_needs_the_old_one(alice_client, alice):
    url = reverse("ui:password-change")
    response = alice_client.post(url, {"old_password": "nope", "new_password1": "a-new-long-pass-1",
                                       "new_password2": "a-new-long-pass-1"})
    assert response.status_code == 200 and 'class="field field--invalid" data-field="old_password"' in text(response)
    alice.refresh_from_db()
    assert alice.check_password("pw-alice-123")

    response = alice_client.post(url, {"old_password": "pw-alice-123", "new_password1": "a-new-long-pass-1",
                                       "new_password2": "a-new-long-pass-1"})
    assert response["Location"] == reverse("ui:security")
    assert "Your password has been changed." in text(alice_client.get(reverse("ui:security")))
    assert log_in(Client(), "alice", "pw-alice-123").status_code == 200
    assert log_in(Client(), "alice", "a-new-long-pass-1").status_code == 302


# --- cookies


def test_session_and_csrf_cookies_are_httponly_lax_and_expire(client, alice):
    page = client.get(reverse("login"))
    csrf = page.cookies["csrftoken"]
    response = log_in(client, "alice", "pw-alice-123")
    session = response.cookies["sessionid"]
    for cookie in (session, csrf):
        assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
        assert not cookie["secure"]  # the default: `make run` serves plain HTTP
    assert session["max-age"] == 12 * 3600


def test_secure_cookies_and_lockout_follow_the_environment():
    env = {**os.environ, "CERTPANEL_SECURE_COOKIES": "true", "CERTPANEL_LOGIN_FAILURE_LIMIT": "3",
           "CERTPANEL_LOGIN_LOCKOUT_MINUTES": "30", "CERTPANEL_SESSION_SECONDS": "600",
           "DJANGO_SETTINGS_MODULE": "panel.settings"}
    code = ("import django; django.setup(); from axes.helpers import get_cool_off; "
            "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.AXES_FAILURE_LIMIT, get_cool_off().total_seconds(), s.SESSION_COOKIE_AGE)")
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR,
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "True", "3", "1800.0", "600"]
