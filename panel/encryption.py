"""Secrets at rest: Fernet with rotatable keys.

Keys come from CERTPANEL_ENCRYPTION_KEYS (comma-separated, newest first) or from a
0600 key file in the data directory, created on first use. The newest key
encrypts; every listed key decrypts, so a new key can be added before the old
one is retired.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from panel.config import read_or_create_secret_file


@lru_cache(maxsize=1)
def _fernet():
    raw = settings.ENCRYPTION_KEYS or read_or_create_secret_file(
        settings.ENCRYPTION_KEY_FILE, lambda: Fernet.generate_key().decode()
    )
    keys = [k.strip() for k in raw.replace("\n", ",").split(",") if k.strip()]
    try:
        return MultiFernet([Fernet(k) for k in keys])
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


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token; reads give back the plaintext."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else value
