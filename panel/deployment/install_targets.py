"""Install targets, like acme.sh --install-cert: copy a certificate's files to paths its
owner may write, then run an administrator-defined reload preset.

Paths lie inside the owner's home or a directory an administrator granted them (an
administrator's also below settings.INSTALL_ROOTS; panel.security.homes says which), and their
directory must already exist. Commands are never written by users: a target names a
ReloadPreset, whose argv list runs without a shell, with a timeout and a minimal
environment. Targets run after every issuance and renewal (panel.deployment.dispatch queues them when
a new version is put in service); a failure is recorded on the target, and dispatch reports
it like a failed renewal.
"""

import logging
import os
import re
import signal
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from certs.models import Certificate, InstallTarget
from panel.toolkit import files, privilege, validation

log = logging.getLogger(__name__)

ERROR_TAIL = 2000  # characters of a preset's output kept as the target's error
# The preset's whole environment: the worker's own holds the panel's secrets.
PRESET_ENVIRONMENT = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


# Why an install failed, as the owner reads it (each followed by the system's own words, if any).
NOT_ALLOWED = gettext_noop("%(path)s cannot be written: it is no longer allowed, or its directory "
                           "is gone.")
NOT_WRITTEN = gettext_noop("The files could not be written: check that the directory exists and "
                           "the panel may write there.")
NOT_APPROVED = gettext_noop("The files are installed, but the reload preset “%(name)s” does not "
                            "run until an administrator approves it (Reload presets page).")
NOT_A_COMMAND = gettext_noop("The reload preset “%(name)s” is not a list of words; an "
                             "administrator must fix it.")
NOT_STARTED = gettext_noop("The reload preset “%(name)s” could not be started: check that "
                           "%(program)s is installed.")
TOO_SLOW = gettext_noop("The reload preset “%(name)s” did not finish within %(seconds)ss and was "
                        "stopped.")
EXITED = gettext_noop("The reload preset “%(name)s” exited with status %(status)s.")
AS_SERVICE_USER = gettext_noop("The reload preset “%(name)s” failed. It ran as the user %(user)s, not "
                               "as root: only the commands an administrator lists in "
                               "CERTPANEL_ROOT_COMMANDS_FILE run as root. If it needs root, add it "
                               "there exactly as the preset gives it.")


class InstallError(Exception):
    """A target could not be installed. `message` (an English msgid) and `params` say why in
    the reader's language (certs.problems), `raw` is the system's own words; str() is all of it
    in English. Safe to store and show."""

    def __init__(self, message, raw="", **params):
        self.failure = {"message": message, "params": {**params, "raw": raw} if raw else params}
        with translation.override("en"):
            super().__init__("\n".join(filter(None, [_(message) % params, raw])))


# --- validation


def validate_target_path(value, roots) -> str:
    """A file path inside one of `roots` (the owner's, panel.security.homes.install_roots_of)
    whose directory exists, and that does not lead out of the roots through a symbolic link."""
    path = validation.validate_path_within(value, roots, _("install path"), name_may_be_link=True)
    if path in roots or path.is_dir():
        raise ValidationError(_("The install path must name a file, not a directory."))
    if not path.parent.is_dir():
        raise ValidationError(_("The directory %(dir)s does not exist; ask an administrator to create it.")
                              % {"dir": path.parent})
    return str(path)


def parse_mode(value) -> int:
    """A file mode given as octal text ("0640", "640" or "0o640")."""
    text = str(value).strip().lower().removeprefix("0o")
    if not re.fullmatch(r"[0-7]{3,4}", text) or int(text, 8) > 0o777:
        raise ValidationError(_("Give the mode as three octal digits, e.g. 0600 or 0644."))
    return int(text, 8)


def clean_target(paths: dict, key_mode: int, cert_mode: int, roots, exclude_pk=None) -> dict:
    """Validated {field: path} of a target, each inside one of `roots` (its owner's);
    raises ValidationError keyed by field.

    A path may belong to one target only: otherwise one user's renewals would
    overwrite another's files."""
    errors, cleaned = {}, {}
    for field in InstallTarget.PATH_FIELDS:
        value = paths.get(field) or ""
        if not value:
            cleaned[field] = ""
            continue
        try:
            cleaned[field] = validate_target_path(value, roots)
        except ValidationError as exc:
            errors[field] = exc.messages
    if not errors:
        given = [field for field in InstallTarget.PATH_FIELDS if cleaned[field]]
        if not given:
            errors["non_field_errors"] = [_("Give at least one path: key, certificate, chain or fullchain.")]
        seen = {}
        for field in given:
            if cleaned[field] in seen:
                errors[field] = [_("The same path is given twice.")]
            seen[cleaned[field]] = field
        # One query for all paths (the path columns have no index: a scan each, not sixteen).
        wanted = {cleaned[field] for field in given}
        clash = Q()
        for other in InstallTarget.PATH_FIELDS:
            clash |= Q(**{f"{other}__in": wanted})
        taken = set()
        for row in InstallTarget.objects.exclude(pk=exclude_pk).filter(clash).values_list(*InstallTarget.PATH_FIELDS):
            taken.update(row)
        for field in given:
            if field not in errors and cleaned[field] in taken:
                errors[field] = [_("Another install target already writes this path.")]
    if key_mode & 0o007:
        # On a shared server "others" are the other customers.
        errors["key_mode"] = [_("A private key must not be accessible to every user on the server "
                                "(no permission for “others”).")]
    if errors:
        raise ValidationError(errors)
    return cleaned


# --- running


def run_targets_for(certificate_id, roots_of, only=None, on_failure=None) -> list:
    """Install the certificate's current version at each of its targets (or at target
    `only`), each path checked again to lie inside `roots_of(owner)`. Returns the targets'
    ids that failed (each has its error recorded); `on_failure(target, certificate)` hears of
    each failure as it happens."""
    cert = Certificate.objects.filter(pk=certificate_id).first()
    if cert is None:
        return []
    targets = InstallTarget.objects.filter(certificate=cert).select_related("reload_preset", "owner")
    if only is not None:
        targets = targets.filter(pk=only)
    failed = []
    for target in targets:
        if not run_target(target, roots_of(target.owner)):
            failed.append(target.pk)
            if on_failure is not None:
                on_failure(target, cert)
    return failed


def run_target(target, roots) -> bool:
    """Write the target's files (inside `roots`) from its certificate's current version,
    atomically, then run its reload preset. Records and returns whether it all worked."""
    with _target_lock(target.pk):
        # Read under the lock: a run that waited installs the newest version, never an older one.
        cert = Certificate.objects.select_related("current_version").filter(pk=target.certificate_id).first()
        version = cert.current_version if cert else None
        key = version.private_key if version else ""
        try:
            if version is None:
                raise InstallError(gettext_noop("The certificate has not been issued yet."))
            _install_files(target, version, roots)
            if target.reload_preset_id:
                _run_preset(target.reload_preset, key)
        except InstallError as exc:
            error, failure = _redact(str(exc), key), exc.failure
        else:
            error, failure = "", None
    target.last_status = InstallTarget.Status.FAILED if error else InstallTarget.Status.OK
    target.last_error, target.last_failure, target.last_run_at = error, failure, timezone.now()
    # An update, not save(): the owner may have edited the target's paths meanwhile.
    InstallTarget.objects.filter(pk=target.pk).update(
        last_status=target.last_status, last_error=error, last_failure=failure,
        last_run_at=target.last_run_at)
    if error:
        log.warning("install target %s of certificate %s failed: %s", target.pk, target.certificate_id, error)
    return not error


def files_of(version) -> dict:
    """{path field: (text, is the key)} of a certificate version."""
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", version.chain_pem, re.S)
    return {
        "key_path": (version.private_key, True),
        "cert_path": (version.cert_pem, False),
        "chain_path": ("".join(block + "\n" for block in blocks[1:]), False),
        "fullchain_path": (version.chain_pem, False),
    }


def _install_files(target, version, roots):
    """Stage every file beside its destination, then swap them in: a failure before the
    swap leaves the previous files untouched."""
    contents = files_of(version)
    staged = []
    try:
        for field, path in target.paths().items():
            try:
                # The roots (a grant taken back), or a symlink, may have changed.
                destination = Path(validate_target_path(path, roots))
            except ValidationError as exc:
                raise InstallError(NOT_ALLOWED, " ".join(exc.messages), path=path) from None
            text, is_key = contents[field]
            mode = target.key_mode if is_key else target.cert_mode
            staged.append((files.stage(destination, text, mode), destination))
        files.put_in_place(staged)
    except OSError as exc:
        raise InstallError(NOT_WRITTEN,
                           f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None
    finally:
        for tmp, _destination in staged:
            tmp.unlink(missing_ok=True)


def _run_preset(preset, key):
    if not preset.approved:
        # A command a user's import brought: it would run on this server as the panel's user.
        raise InstallError(NOT_APPROVED, name=preset.name)
    command = preset.command
    if not isinstance(command, list) or not command or not all(isinstance(w, str) and w for w in command):
        raise InstallError(NOT_A_COMMAND, name=preset.name)
    # The installed split's root worker runs as root only what a root-owned file lists (panel.toolkit.privilege).
    try:
        account = privilege.account_for_command(command)
    except KeyError:
        raise InstallError(NOT_STARTED, f"no such user: {settings.SERVICE_USER}", name=preset.name,
                           program=command[0]) from None
    if account is None:
        _run_command(preset, command, key)
        return
    try:
        _run_command(preset, command, key, account)
    except InstallError as exc:
        raise InstallError(AS_SERVICE_USER, str(exc), name=preset.name, user=account.name) from None


def _run_command(preset, command, key, account=None):
    """Run the preset's argv, as `account` if given (with its HOME), else as this process."""
    environment, as_account = PRESET_ENVIRONMENT, {}
    if account is not None:
        environment = {**PRESET_ENVIRONMENT, "HOME": account.home}
        as_account = {**account.popen_arguments(), "cwd": "/"}
    try:
        # Its own session, so a timeout kills whatever it started too.
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=environment, start_new_session=True, **as_account)
    except OSError as exc:
        raise InstallError(NOT_STARTED, exc.strerror or "", name=preset.name,
                           program=command[0]) from None
    with process:
        try:
            stdout, stderr = process.communicate(timeout=preset.timeout_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            raise InstallError(TOO_SLOW, _output_tail(stderr or stdout, key), name=preset.name,
                               seconds=preset.timeout_seconds)
    if process.returncode != 0:
        raise InstallError(EXITED, _output_tail(stderr or stdout, key), name=preset.name,
                           status=process.returncode)




def _output_tail(output: bytes, key: str) -> str:
    text = _redact(output.decode(errors="replace"), key).strip()
    if len(text) > ERROR_TAIL:
        text = "…" + text[-ERROR_TAIL:]
    return text


_PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S)


def _redact(text: str, key: str) -> str:
    """`text` without any private key, whole or in part (a preset could print the key)."""
    text = _PRIVATE_KEY_BLOCK.sub("[private key removed]", text)
    for line in key.splitlines():
        line = line.strip()
        if len(line) >= 16 and not line.startswith("-----"):
            text = text.replace(line, "[private key removed]")
    return text


def _target_lock(target_id):
    """One run of a target at a time on this machine."""
    directory = Path(settings.DATA_DIR) / "install-locks"
    directory.mkdir(mode=0o700, exist_ok=True)
    return files.file_lock(directory / f"target-{target_id}.lock")
