"""manage.py rotate_keys: a new key encrypts every stored secret; old keys can then go."""

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command
from django.db import connection

from certs.models import AcmeAccount, Certificate, CertificateVersion, DnsCredential, NotificationChannel
from panel.toolkit import encryption

SECRETS = {"dns": '{"token": "dns-secret-1"}', "eab": "eab-hmac-secret", "account_key": "ACCOUNT KEY PEM",
           "private_key": "CERT KEY PEM", "url": "json://hooks.example.net/secret-path"}


@pytest.fixture
def key_file(settings, tmp_path):
    settings.ENCRYPTION_KEYS = None
    settings.ENCRYPTION_KEY_FILE = tmp_path / "encryption.keys"
    return settings.ENCRYPTION_KEY_FILE


@pytest.fixture
def stored_secrets(key_file, alice):
    DnsCredential.objects.create(owner=alice, provider="cloudflare", name="cf", credentials=SECRETS["dns"])
    account = AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/dir", eab_kid="kid",
                                         eab_hmac_key=SECRETS["eab"], account_key=SECRETS["account_key"],
                                         account_url="https://ca.test/acct/1")
    certificate = Certificate.objects.create(owner=alice, account=account, domains=["a.example.com"])
    CertificateVersion.objects.create(certificate=certificate, cert_pem="-", chain_pem="-",
                                      private_key=SECRETS["private_key"], serial="1", issuer="CN=t",
                                      not_before="2025-01-01T00:00Z", not_after="2025-04-01T00:00Z")
    NotificationChannel.objects.create(owner=alice, name="hook", url=SECRETS["url"])


def stored_tokens():
    """Every non-empty encrypted column value, as it lies in the database."""
    tokens = []
    with connection.cursor() as cursor:
        for model, names in encryption.encrypted_fields().items():
            columns = ", ".join(connection.ops.quote_name(model._meta.get_field(n).column) for n in names)
            cursor.execute(f"SELECT {columns} FROM {connection.ops.quote_name(model._meta.db_table)}")
            tokens += [value for row in cursor.fetchall() for value in row if value]
    return tokens


def keys_in(path):
    return path.read_text().split()


def decrypts_with(key, token):
    try:
        Fernet(key).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def test_every_secret_is_found_through_the_app_registry():
    found = {model.__name__: names for model, names in encryption.encrypted_fields().items()}
    assert found["DnsCredential"] == ["credentials"]
    assert set(found["AcmeAccount"]) == {"eab_hmac_key", "account_key"}
    assert found["CertificateVersion"] == ["private_key"]
    assert found["NotificationChannel"] == ["url"]


def test_after_rotation_only_the_new_key_is_needed(stored_secrets, key_file):
    [old_key] = keys_in(key_file)
    tokens = stored_tokens()
    assert len(tokens) == len(SECRETS) and all(decrypts_with(old_key, t) for t in tokens)

    call_command("rotate_keys")

    new_key, kept_old = keys_in(key_file)
    assert kept_old == old_key
    tokens = stored_tokens()
    assert len(tokens) == len(SECRETS)
    assert all(decrypts_with(new_key, t) for t in tokens)
    assert not any(decrypts_with(old_key, t) for t in tokens)


def test_drop_old_leaves_one_key_and_every_secret_readable(stored_secrets, key_file):
    call_command("rotate_keys", "--drop-old")
    assert len(keys_in(key_file)) == 1
    assert DnsCredential.objects.get().credentials == SECRETS["dns"]
    account = AcmeAccount.objects.get()
    assert (account.eab_hmac_key, account.account_key) == (SECRETS["eab"], SECRETS["account_key"])
    assert CertificateVersion.objects.get().private_key == SECRETS["private_key"]
    assert NotificationChannel.objects.get().url == SECRETS["url"]
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_running_it_twice_is_safe(stored_secrets, key_file):
    call_command("rotate_keys")
    call_command("rotate_keys", "--drop-old")
    [newest] = keys_in(key_file)
    assert all(decrypts_with(newest, t) for t in stored_tokens())
    assert DnsCredential.objects.get().credentials == SECRETS["dns"]


def test_environment_keys_are_reencrypted_with_their_first_key(stored_secrets, key_file, settings):
    [file_key] = keys_in(key_file)
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = f"{new_key},{file_key}"

    call_command("rotate_keys")

    assert keys_in(key_file) == [file_key]  # the file is not the source of keys: untouched
    assert all(decrypts_with(new_key, t) and not decrypts_with(file_key, t) for t in stored_tokens())
    with pytest.raises(CommandError, match="CERTPANEL_ENCRYPTION_KEYS"):
        call_command("rotate_keys", "--drop-old")
