"""Secrets at rest: Fernet with rotatable keys.

Keys come from CERTPANEL_ENCRYPTION_KEYS (comma-separated, newest first) or from a
0600 key file in the data directory, created on first use. The newest key
encrypts; every listed key decrypts, so a new key can be added before the old
one is retired. `manage.py rotate_keys` (rotate_key_file + reencrypt_all below)
does that for the key file.
"""

import os
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction

from panel.toolkit.config import read_or_create_secret_file
from panel.toolkit.files import write_atomic

REENCRYPT_BATCH_SIZE = 200


def keys_from_environment() -> bool:
    return bool(settings.ENCRYPTION_KEYS)


def _parse_keys(raw):
    return [k.strip() for k in raw.replace("\n", ",").split(",") if k.strip()]


def current_keys() -> list[str]:
    raw = settings.ENCRYPTION_KEYS or read_or_create_secret_file(
        settings.ENCRYPTION_KEY_FILE, lambda: Fernet.generate_key().decode()
    )
    return _parse_keys(raw)


def _key_file_stamp():
    # Web, worker and beat each cache the keys; a rotation rewrites the file, and the
    # changed stamp makes every process read it again before its next encrypt or decrypt.
    if keys_from_environment():
        return None
    try:
        stat = os.stat(settings.ENCRYPTION_KEY_FILE)
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def _fernet():
    return _fernet_for(str(settings.ENCRYPTION_KEY_FILE), settings.ENCRYPTION_KEYS, _key_file_stamp())


@lru_cache(maxsize=4)
def _fernet_for(key_file, environment_keys, stamp):
    try:
        return MultiFernet([Fernet(k) for k in current_keys()])
    except ValueError:
        raise ImproperlyConfigured(
            "CERTPANEL_ENCRYPTION_KEYS (or the encryption.keys file) holds a value that is not "
            "a Fernet key; generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        ) from None


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted: the encryption key that wrote it is missing "
            "from CERTPANEL_ENCRYPTION_KEYS"
        ) from None


def _write_key_file(keys):
    """Replace the key file in one step, mode 0600."""
    write_atomic(settings.ENCRYPTION_KEY_FILE, "\n".join(keys) + "\n", mode=0o600)


def rotate_key_file():
    """Put a new key first in the key file; the old ones stay, so everything still decrypts."""
    _write_key_file([Fernet.generate_key().decode(), *current_keys()])


def drop_old_keys():
    """Keep only the newest key. Only after reencrypt_all() has finished."""
    _write_key_file(current_keys()[:1])


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token; reads give back the plaintext."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else value


def encrypted_fields():
    """{model: [field names]} of every EncryptedTextField of every installed model."""
    found = {}
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names and not model._meta.proxy:
            found[model] = names
    return found


def reencrypt_all(batch_size=REENCRYPT_BATCH_SIZE) -> dict:
    """Write every encrypted value again with the newest key, batch by batch, each batch in
    one transaction (a crash leaves rows under either key, both still listed). Returns
    {"app_label.Model": rows}."""
    counts = {}
    for model, names in encrypted_fields().items():
        pks = list(model._base_manager.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(pks), batch_size):
            with transaction.atomic():
                # Decrypted on load with any listed key; bulk_update encrypts with the newest.
                rows = list(model._base_manager.filter(pk__in=pks[start:start + batch_size])
                            .select_for_update().only("pk", *names))
                model._base_manager.bulk_update(rows, names)
        counts[model._meta.label] = len(pks)
    return counts
