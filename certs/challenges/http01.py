"""HTTP-01 through the panel's challenge directory.

Each managed vhost serves /.well-known/acme-challenge/ from its own folder of
settings.ACME_CHALLENGE_DIR (site_directory) before any redirect, and the private nginx's
default server serves the directory itself, for names on no site. So presenting a token is
writing a file, with no nginx reload per challenge, and a token is answered only on the vhost
of the name it is for: one user's order can never get an answer served on another user's site.
"""

import os
import re
from pathlib import Path

from django.conf import settings

from panel.models import SiteDomain
from panel.toolkit import access
from panel.toolkit.files import write_atomic

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_WHERE = re.compile(r"^(site-[0-9]+)?$")


class NotYours(Exception):
    """The name's site belongs to someone else, or (for a user) the name is on no site: the
    message says which and what to do."""


def safe_token(token: str) -> str:
    """The token, if it is base64url (as the CA must send it): anything else could escape a directory."""
    if not _TOKEN.match(token):
        raise ValueError(f"refusing an HTTP-01 token that is not base64url: {token[:40]!r}")
    return token


def site_directory(root: Path, site_pk: int) -> Path:
    """The folder of `root` (the challenge directory) that only the site's vhost serves."""
    return Path(root) / f"site-{int(site_pk)}"


def where_for(owner, name: str) -> str:
    """The folder (relative to the challenge directory) whose files `name`'s vhost serves, for an
    order of `owner`: the folder of the name's site if it is the owner's (an admin's orders may use
    any site's), the challenge directory itself ("") for a name on no site, for admins only."""
    site = SiteDomain.objects.filter(name=name).values_list("site_id", "site__owner_id").first()
    if site is not None and (site[1] == owner.pk or access.is_admin(owner)):
        return site_directory(Path(), site[0]).name
    if site is None and access.is_admin(owner):
        return ""
    if site is None:
        raise NotYours(f"{name} is on none of your sites, so the panel's nginx does not answer its HTTP-01 "
                       "challenge for you: add it to one of your sites, or validate it with DNS-01")
    raise NotYours(f"{name} is on another user's site, so its HTTP-01 challenge is not answered for you")


def _path(token: str, where: str) -> Path:
    if not _WHERE.match(where):
        raise ValueError(f"refusing a challenge folder the panel did not choose: {where[:40]!r}")
    return Path(settings.ACME_CHALLENGE_DIR) / where / safe_token(token)


def present(token: str, key_authorization: str, owner, name: str) -> str:
    """Write the answer where only `name`'s vhost serves it; returns that folder (where_for),
    which cleanup() needs. Raises NotYours."""
    where = where_for(owner, name)
    path = _path(token, where)
    if where:
        path.parent.mkdir(exist_ok=True)
        os.chmod(path.parent, 0o755)  # nginx's workers read the tokens
    write_atomic(path, key_authorization, mode=0o644)
    return where


def cleanup(token: str, where: str = "") -> None:
    """Remove a token present() wrote into `where` ("" for challenges presented before sites had
    folders of their own)."""
    _path(token, where).unlink(missing_ok=True)
