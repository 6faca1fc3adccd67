"""Moving in from other ACME clients (acme.sh, certbot): readers and one writer."""

import os
from importlib import import_module
from pathlib import Path

from django.utils.translation import gettext_lazy as _lazy

ACMESH = "acme.sh"
CERTBOT = "certbot"

# What each client's directory holds, whatever it has issued so far.
EXPECTED = {
    ACMESH: _lazy("an acme.sh home (the folder with account.conf and ca/, usually ~/.acme.sh)"),
    CERTBOT: _lazy("a certbot config dir (the folder with accounts/ and renewal/, usually /etc/letsencrypt)"),
}


def detect(path) -> str | None:
    """ACMESH or CERTBOT for the client whose directory `path` is, else None."""
    path = Path(path)
    if (path / "account.conf").is_file() or ((path / "ca").is_dir() and any(path.glob("*/*.conf"))):
        return ACMESH
    if (path / "renewal").is_dir() or (path / "accounts").is_dir():
        return CERTBOT
    return None


# The reader of each client: (path, confined=False) -> Found. Loaded when used, so the writer
# and the commands load without them.
READERS = {
    ACMESH: "certs.importers.acmesh.read_home",
    CERTBOT: "certs.importers.certbot.read_config_dir",
}


def reader(client):
    """The reader function of `client`."""
    module, _dot, name = READERS[client].rpartition(".")
    return getattr(import_module(module), name)


def inside(path, root) -> bool:
    """Whether `path` is `root` or below it once links are followed: a reader reading an uploaded
    archive (confined) reads only such files."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, top]) == top
