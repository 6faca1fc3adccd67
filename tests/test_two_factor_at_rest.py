"""Two-factor secrets are encrypted at rest like every other secret: no table holds a TOTP key
or a recovery code in clear, signing in with either still works, manage.py rotate_keys
re-encrypts them, and migration 0008 moves devices set up before it without logging anyone out."""

import re
from base64 import b32encode

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from panel.models import AuthenticatorDevice, RecoveryCode, RecoveryCodeDevice
from panel.security import twofactor
from tests.test_login_security import app_code, log_in, logged_in, text
from tests.test_rotate_keys import decrypts_with, key_file, keys_in  # noqa: F401 - key_file is a fixture

BEFORE = [("panel", "0007_user_homes"), ("otp_totp", "0003_add_timestamps"),
          ("otp_static", "0003_add_timestamps")]
AFTER = [("panel", "0008_two_factor_at_rest")]
OLD_KEY = "3132333435363738393031323334353637383930"  # hex, as django-otp stores it


def every_text_in_the_database():
    """Every value of every table, as it lies on disk, in one string."""
    values = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            values += [str(value) for row in cursor.fetchall() for value in row]
    return "\n".join(values)


def set_up_two_factor(client, user):
    """What a user does on the Security page: the secret shown, a code from the app, the codes."""
    page = text(client.get(reverse("ui:two-factor-enable")))
    secret = re.search(r'<p class="secret">([A-Z2-7 ]+)</p>', page).group(1).replace(" ", "")
    device = AuthenticatorDevice.objects.get(user=user)
    response = client.post(reverse("ui:two-factor-enable"), {"code": app_code(device)})
    return device, secret, re.findall(r"<li>([a-z2-7]{8})</li>", text(response))


@pytest.mark.django_db
def test_no_table_holds_the_key_or_a_recovery_code_in_clear(alice_client, alice):
    device, secret, codes = set_up_two_factor(alice_client, alice)

    stored = every_text_in_the_database().lower()

    assert len(codes) == twofactor.RECOVERY_CODE_COUNT
    assert device.key.lower() not in stored and secret.lower() not in stored
    assert not [code for code in codes if code in stored]


@pytest.mark.django_db
def test_the_app_and_a_recovery_code_still_sign_in(alice_client, alice):
    device, _secret, codes = set_up_two_factor(alice_client, alice)

    with_app = Client()
    log_in(with_app, "alice", "pw-alice-123")
    assert with_app.post(reverse("login-verify"), {"code": app_code(device, offset_steps=1)})["Location"] == "/sites/"
    assert logged_in(with_app)

    with_code = Client()
    log_in(with_code, "alice", "pw-alice-123")
    assert with_code.post(reverse("login-verify"), {"code": codes[0].upper()})["Location"] == "/sites/"
    assert logged_in(with_code) and twofactor.recovery_codes_left(alice) == len(codes) - 1

    again = Client()
    log_in(again, "alice", "pw-alice-123")
    assert "This code is not valid" in text(again.post(reverse("login-verify"), {"code": codes[0]}))


@pytest.mark.django_db
def test_rotate_keys_reencrypts_the_two_factor_secrets(key_file, alice):  # noqa: F811
    device = twofactor.unconfirmed_totp_device(alice)
    twofactor.new_recovery_codes(alice)
    [old_key] = keys_in(key_file)

    call_command("rotate_keys", "--drop-old")

    [new_key] = keys_in(key_file)
    with connection.cursor() as cursor:
        cursor.execute('SELECT "key" FROM panel_authenticatordevice UNION ALL SELECT code FROM panel_recoverycode')
        stored = [row[0] for row in cursor.fetchall()]
    assert len(stored) == 1 + twofactor.RECOVERY_CODE_COUNT
    assert all(decrypts_with(new_key, token) and not decrypts_with(old_key, token) for token in stored)
    assert AuthenticatorDevice.objects.get().bin_key == device.bin_key


@pytest.fixture
def before_0008(transactional_db):
    """The database as it was before migration 0008; migrated to the latest again afterwards."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield executor.loader.project_state(BEFORE).apps
    call_command("migrate", verbosity=0)


def test_devices_set_up_before_move_and_their_sessions_stay_signed_in(before_0008):
    old = before_0008
    alice = get_user_model().objects.create_user("alice", password="pw-alice-123")
    old_device = old.get_model("otp_totp", "TOTPDevice").objects.create(
        user_id=alice.pk, name="phone", confirmed=True, key=OLD_KEY)
    old_codes = old.get_model("otp_static", "StaticDevice").objects.create(user_id=alice.pk, name="recovery")
    old.get_model("otp_static", "StaticToken").objects.create(device=old_codes, token="aaaa2222")
    signed_in = Client()
    signed_in.force_login(alice)
    session = signed_in.session
    session[DEVICE_ID_SESSION_KEY] = f"otp_totp.totpdevice/{old_device.pk}"
    session.save()

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    device = AuthenticatorDevice.objects.get(user=alice)
    assert device.pk == old_device.pk and device.confirmed and device.key == OLD_KEY
    assert OLD_KEY not in every_text_in_the_database() and "aaaa2222" not in every_text_in_the_database()
    # The session that passed the second step before the upgrade is still signed in.
    assert signed_in.get(reverse("ui:site-list")).status_code == 200
    # The same app and the same recovery code sign in.
    with_app = Client()
    log_in(with_app, "alice", "pw-alice-123")
    pyotp_code = app_code(device)
    assert with_app.post(reverse("login-verify"), {"code": pyotp_code})["Location"] == "/sites/"
    assert b32encode(device.bin_key).decode() == b32encode(bytes.fromhex(OLD_KEY)).decode()
    with_code = Client()
    log_in(with_code, "alice", "pw-alice-123")
    assert with_code.post(reverse("login-verify"), {"code": "aaaa2222"})["Location"] == "/sites/"
    assert not RecoveryCode.objects.exists() and RecoveryCodeDevice.objects.filter(user=alice).exists()
    # New devices get new ids (on PostgreSQL the sequences moved past the ids kept).
    bob = get_user_model().objects.create_user("bob", password="pw-bob-123")
    assert twofactor.unconfirmed_totp_device(bob).pk != device.pk and twofactor.new_recovery_codes(bob)
