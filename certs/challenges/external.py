"""HTTP-01 on servers the panel does not manage, like acme.sh --webroot, --nginx, --apache.

Contract of a mode (a module named in MODES, run on a Celery worker):

    present(certificate, presentations: list[Presentation]) -> context manager
        Make http://<name>/.well-known/acme-challenge/<token> answer exactly
        <key_authorization> for every Presentation(name, token, key_authorization), using
        the certificate's settings (`webroot`, `server_config`), and yield a JSON-serialisable
        state recording exactly what was created or changed (files, reloads). The order
        stores it on every presented Challenge row (`provider_state`) inside the `with`
        block, before it answers the CA, so any worker can clean up later; once the block
        is left, the presentation belongs to that state. If the block raises, undo the
        presentation. A mode that edits something shared holds its lock until the block is
        left, and undoes first what a worker killed inside such a block left behind.
        On failure, undo your own partial work and raise PresentationError with a message
        for the user (it becomes the order's error). Presenting the same tokens again (a
        re-delivered task) must be harmless and yield an equivalent state.
    cleanup(certificate, state: dict) -> None
        Undo exactly what `state` records, nothing else: files back byte-identical, a
        reloaded server serving its old config again. Safe to run twice and after a partial
        run. Raise PresentationError if something could not be restored: the order logs it
        and a later clean-up of the order tries again.

Paths come from the certificate and were checked at request time (certs.certificates);
check them again in present() (validate_server_config below, webroot.validate_webroot):
the configured roots may have changed since. Tokens are base64url: pass them through http01.safe_token()
before using one in a path.

http-01-standalone is not such a mode: its listener lives only inside the step that waits
for the CA (certs/challenges/standalone.py, certs/orders.py).
"""

import importlib
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from certs.models import ChallengeType
from panel.toolkit import validation

# Registry, not discovery: method -> dotted path of its module.
MODES = {
    ChallengeType.HTTP01_WEBROOT: "certs.challenges.webroot",
    ChallengeType.HTTP01_NGINX: "certs.challenges.nginx_mode",
    ChallengeType.HTTP01_APACHE: "certs.challenges.apache_mode",
}


class PresentationError(Exception):
    """The challenge could not be presented or cleaned up; the message is for the user."""


@dataclass(frozen=True)
class Presentation:
    name: str  # the identifier the CA asks, e.g. www.example.com
    token: str
    key_authorization: str


def mode_module(method):
    return importlib.import_module(MODES[ChallengeType(method)])


def present(certificate, presentations):
    """`with present(certificate, presentations) as state:` store the state inside the block."""
    return mode_module(certificate.challenge).present(certificate, list(presentations))


def cleanup(certificate, state) -> None:
    mode_module(certificate.challenge).cleanup(certificate, state)


def validate_server_config(value) -> str:
    """An existing file below one of settings.EXTERNAL_CONFIG_ROOTS, also once symbolic links are followed."""
    path = validation.validate_path_within(value, settings.EXTERNAL_CONFIG_ROOTS, _("server config"))
    if not path.is_file():
        raise ValidationError(_("The file %(path)s does not exist.") % {"path": path})
    return str(path)
