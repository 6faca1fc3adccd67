"""HTTP-01 through the panel's challenge directory.

Every managed vhost (and the private nginx's default server) serves
/.well-known/acme-challenge/ from settings.ACME_CHALLENGE_DIR before any redirect,
so presenting a token is writing a file: no nginx reload per challenge.
"""

import os
import re
from pathlib import Path

from django.conf import settings

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _path(token: str) -> Path:
    if not _TOKEN.match(token):  # tokens are base64url; anything else could escape the directory
        raise ValueError(f"refusing an HTTP-01 token that is not base64url: {token[:40]!r}")
    return Path(settings.ACME_CHALLENGE_DIR) / token


def present(token: str, key_authorization: str) -> None:
    path = _path(token)
    tmp = path.with_name(f".{token}.tmp")
    tmp.write_text(key_authorization)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def cleanup(token: str) -> None:
    _path(token).unlink(missing_ok=True)
