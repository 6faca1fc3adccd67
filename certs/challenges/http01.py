"""HTTP-01 through the panel's challenge directory.

Every managed vhost (and the private nginx's default server) serves
/.well-known/acme-challenge/ from settings.ACME_CHALLENGE_DIR before any redirect,
so presenting a token is writing a file: no nginx reload per challenge.
"""

import re
from pathlib import Path

from django.conf import settings

from panel.toolkit.files import write_atomic

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def safe_token(token: str) -> str:
    """The token, if it is base64url (as the CA must send it): anything else could escape a directory."""
    if not _TOKEN.match(token):
        raise ValueError(f"refusing an HTTP-01 token that is not base64url: {token[:40]!r}")
    return token


def _path(token: str) -> Path:
    return Path(settings.ACME_CHALLENGE_DIR) / safe_token(token)


def present(token: str, key_authorization: str) -> None:
    write_atomic(_path(token), key_authorization, mode=0o644)  # readable by nginx's workers


def cleanup(token: str) -> None:
    _path(token).unlink(missing_ok=True)
