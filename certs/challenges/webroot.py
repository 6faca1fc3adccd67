"""http-01-webroot, like acme.sh --webroot: the token file is written under a document root
that some other web server already serves over plain HTTP.

The state records the files written and the directories created for them, so clean-up
removes exactly those (a directory only while it is empty: the site may have put its own
files there since).
"""

import errno
import os
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from certs.challenges import http01
from certs.challenges.external import PresentationError
from panel.toolkit import validation
from panel.toolkit.files import write_atomic

CHALLENGE_SUBDIR = (".well-known", "acme-challenge")


def validate_webroot(value) -> str:
    """An existing directory below one of settings.WEBROOT_ROOTS, also once symbolic links are followed."""
    path = validation.validate_path_within(value, settings.WEBROOT_ROOTS, _("document root"))
    if not path.is_dir():
        raise ValidationError(_("The directory %(dir)s does not exist.") % {"dir": path})
    return str(path)


@contextmanager
def present(certificate, presentations):
    state = _write_tokens(certificate, presentations)
    try:
        yield state
    except BaseException:
        cleanup(certificate, state)
        raise


def _write_tokens(certificate, presentations) -> dict:
    try:
        root = Path(validate_webroot(certificate.webroot))
    except ValidationError as exc:
        raise PresentationError(f"{certificate.webroot}: {' '.join(exc.messages)}")
    state = {"files": [], "directories": []}
    try:
        directory = root
        for part in CHALLENGE_SUBDIR:
            directory = directory / part
            if not directory.is_dir():
                directory.mkdir(mode=0o755)
                os.chmod(directory, 0o755)  # readable by the web server whatever the worker's umask
                state["directories"].append(str(directory))
        if not validation.is_under(directory.resolve(), settings.WEBROOT_ROOTS):
            raise PresentationError(f"{directory} leads outside the allowed directories through a symbolic link")
        for presentation in presentations:
            path = directory / http01.safe_token(presentation.token)
            # A fresh temporary name: the site's owner may write here, and a link they plant
            # must not redirect the write. Readable by the web server.
            write_atomic(path, presentation.key_authorization, mode=0o644)
            state["files"].append(str(path))
    except (OSError, PresentationError) as exc:
        cleanup(certificate, state)
        raise PresentationError(f"could not write the challenge under {root}: {exc}") from exc
    return state


def cleanup(certificate, state) -> None:
    for path in state.get("files", []):
        Path(path).unlink(missing_ok=True)
    for directory in reversed(state.get("directories", [])):  # deepest first
        try:
            Path(directory).rmdir()
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                raise
