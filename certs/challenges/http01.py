"""HTTP-01 through the panel's challenge directory.

Each managed vhost serves /.well-known/acme-challenge/<token> from the folder of the name asked
for, settings.ACME_CHALLENGE_DIR/names/<name>/, before any redirect; the private nginx's default
server does too (a site whose vhost is not live yet), then falls back to the directory itself,
for administrators' names on no site. So presenting a token is writing a file, with no nginx
reload per challenge, and a token is answered only for the name it was presented for, written
only for an order whose owner's site has that name: one user's order can never get an answer
served for another user's name.
"""

import os
import re
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from panel.models import SiteDomain
from panel.toolkit import access
from panel.toolkit.files import write_atomic

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# "" (the directory itself) or names/<a validated, punycode name>: never anything that leaves it.
_WHERE = re.compile(r"^(names/[a-z0-9_-]+(\.[a-z0-9_-]+)*)?$")


class NotYours(Exception):
    """The name's site belongs to someone else, or (for a user) the name is on no site: the
    message says which and what to do. `message` and `params` keep it for a reader's language."""

    def __init__(self, message, **params):
        super().__init__(_(message) % params)
        self.message, self.params = message, params


def safe_token(token: str) -> str:
    """The token, if it is base64url (as the CA must send it): anything else could escape a directory."""
    if not _TOKEN.match(token):
        raise ValueError(f"refusing an HTTP-01 token that is not base64url: {token[:40]!r}")
    return token


def where_for(owner, name: str) -> str:
    """The folder (relative to the challenge directory) an order of `owner` presents `name`'s
    token in: the name's own folder when the name's site is the owner's (an admin's orders may
    use any site's names), the directory itself ("") for a name on no site, for admins only."""
    site_owner = SiteDomain.objects.filter(name=name).values_list("site__owner_id", flat=True).first()
    if site_owner is not None and (site_owner == owner.pk or access.is_admin(owner)):
        return f"names/{name}"
    if site_owner is None and access.is_admin(owner):
        return ""
    if site_owner is None:
        raise NotYours(gettext_noop("%(name)s is on none of your sites, so the panel's nginx "
                                    "does not answer its HTTP-01 challenge for you: add it to one "
                                    "of your sites, or validate it with DNS-01"), name=name)
    raise NotYours(gettext_noop("%(name)s is on another user's site, so its HTTP-01 challenge is "
                                "not answered for you"), name=name)


def _path(token: str, where: str) -> Path:
    if not _WHERE.match(where):
        raise ValueError(f"refusing a challenge folder the panel did not choose: {where[:40]!r}")
    return Path(settings.ACME_CHALLENGE_DIR) / where / safe_token(token)


def present(token: str, key_authorization: str, owner, name: str) -> str:
    """Write the answer where nginx serves it for `name` only; returns that folder (where_for),
    which cleanup() needs. Raises NotYours."""
    where = where_for(owner, name)
    path = _path(token, where)
    if where:
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in (path.parent.parent, path.parent):
            os.chmod(folder, 0o755)  # nginx's workers read the tokens
    write_atomic(path, key_authorization, mode=0o644)
    return where


def cleanup(token: str, where: str = "") -> None:
    """Remove a token present() wrote into `where` ("" for challenges presented before names had
    folders of their own)."""
    _path(token, where).unlink(missing_ok=True)
