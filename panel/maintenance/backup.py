"""Backup and restore of a whole installation, and the scheduled daily backup.

What an archive holds (the format is panel.maintenance.archive's):

- `database.json`: every row of every model (Django's serialization, natural keys for content
  types and permissions), read in ONE read transaction while the panel keeps running
  (REPEATABLE READ on PostgreSQL; a deferred read transaction on SQLite, which in WAL mode
  blocks no writer). It does not depend on the engine: a SQLite backup restores into
  PostgreSQL. Secrets (DNS credentials, account and certificate keys, two-factor keys,
  notification URLs) are in it as plain values, which is why every member is sealed with the
  passphrase; a restore encrypts them again with the keys of the restored installation.
- `keys.json`: the encryption keys and Django's secret key.
- `certs/...`: the certificate files nginx reads (settings.CERT_DEPLOY_DIR).
- `nginx-custom/<site id>/...`: each site's hand-written nginx additions (Layout.custom_dir).

A restore goes into an empty installation only, reads and checks the whole archive before
it changes anything, then: keys, migrate, the rows in one transaction, sequences, files, and
an nginx apply queued for every site, so the restored certificates are served again.
"""

import datetime
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.management import call_command
from django.core.management.color import no_style
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.translation import gettext as _

from certs import notifications
from certs.models import Certificate
from panel.deployment import dispatch
from panel.deployment.nginx.render import Layout
from panel.maintenance import archive
from panel.models import Site
from panel.toolkit import encryption, task_queue
from panel.toolkit.files import file_lock, write_atomic

log = logging.getLogger(__name__)

DATABASE = "database.json"
SECRETS = "keys.json"
CERT_FILES = "certs"
CUSTOM_ADDITIONS = "nginx-custom"
MIN_PASSPHRASE_LENGTH = 8
BATCH = 500  # rows serialized at a time
# Rebuilt by migrate (content types, permissions) or not worth keeping (sessions: everyone signs in again).
NOT_DUMPED = {"contenttypes.contenttype", "auth.permission", "sessions.session"}
SCHEDULED_NAME = re.compile(r"^certpanel-backup-\d{8}-\d{6}\.tar\.gz$")


class BackupRefused(Exception):
    """The backup or restore cannot go on; the message says why and what to do. Nothing was changed."""


class RestoreFailed(Exception):
    """A restore failed after it began to change the installation; the message says what is left."""


@dataclass
class RestoreReport:
    rows: int = 0
    files: int = 0
    sites: int = 0
    notes: list[str] = field(default_factory=list)


# --- passphrases


def read_passphrase_file(path) -> str:
    """The first line of the file `path`."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise BackupRefused(f"The passphrase file {path} cannot be read ({exc.strerror}).") from None
    passphrase = text.splitlines()[0].rstrip("\r\n") if text else ""
    if not passphrase:
        raise BackupRefused(f"The passphrase file {path} is empty: its first line must be the passphrase.")
    return passphrase


def check_new_passphrase(passphrase: str):
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise BackupRefused(f"The passphrase is too short: use at least {MIN_PASSPHRASE_LENGTH} characters "
                            "(a few random words are best).")


# --- backup


def dumped_models():
    """Every model whose rows a backup holds, in an order loaddata can follow."""
    ordered = serializers.sort_dependencies([(config, None) for config in apps.get_app_configs()],
                                            allow_cycles=True)
    return [model for model in ordered
            if model._meta.label_lower not in NOT_DUMPED and model._meta.managed and not model._meta.proxy]


@contextmanager
def _read_snapshot():
    """One read transaction: every query inside sees the database as it was at its start."""
    if connection.in_atomic_block:  # inside a caller's transaction (tests): that one is the snapshot
        yield
        return
    if connection.vendor == "sqlite":
        # Not transaction.atomic(): the panel's SQLite transactions are BEGIN IMMEDIATE (settings),
        # which would hold the write lock and stall every writer for the whole dump.
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # the transaction's first statement
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield
        transaction.set_rollback(True)


def _applied_migrations() -> dict[str, list[str]]:
    found = {}
    for app_label, name in sorted(MigrationRecorder(connection).applied_migrations()):
        found.setdefault(app_label, []).append(name)
    return found


def _panel_commit():
    try:
        result = subprocess.run(["git", "-C", str(settings.BASE_DIR), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def _layout() -> Layout:
    # Only custom_dir is read: the ports and the nginx version do not matter for it.
    return Layout(vhost_dir=Path(settings.NGINX_VHOST_DIR), challenge_dir=Path(settings.ACME_CHALLENGE_DIR),
                  http_port=settings.NGINX_HTTP_PORT, https_port=settings.NGINX_HTTPS_PORT)


def _files_below(directory: Path):
    """(relative path, path) of every regular file below `directory`; symbolic links are not followed."""
    if not directory.is_dir():
        return
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if path.is_file() and not path.is_symlink() and not name.endswith((".tmp", ".old", ".new")):
                yield path.relative_to(directory).as_posix(), path


def _secrets() -> dict:
    secret_key_from_file = Path(settings.SECRET_KEY_FILE).is_file() and (
        Path(settings.SECRET_KEY_FILE).read_text().strip() == settings.SECRET_KEY)
    return {
        "encryption_keys": encryption.current_keys(),
        "encryption_keys_from": "environment" if encryption.keys_from_environment() else "file",
        "secret_key": settings.SECRET_KEY,
        "secret_key_from": "file" if secret_key_from_file else "environment",
    }


class _ExactEncoder(DjangoJSONEncoder):
    """Times to the microsecond (DjangoJSONEncoder keeps milliseconds): a restore gives back the same values."""

    def default(self, o):
        if isinstance(o, (datetime.datetime, datetime.time)):
            return o.isoformat()
        return super().default(o)


def _batches(rows):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def create_backup(out, passphrase: str) -> dict:
    """Write the archive `out` (see the module's docstring). Returns its manifest."""
    out = Path(out).absolute()
    check_new_passphrase(passphrase)
    if out.exists():
        raise BackupRefused(f"{out} exists already: name a new file (a backup never overwrites another).")
    if not out.parent.is_dir():
        raise BackupRefused(f"The directory {out.parent} does not exist.")
    try:
        return _write_backup(out, passphrase)
    except OSError as exc:
        raise BackupRefused(f"The backup could not be written ({exc.strerror}: {exc.filename}); nothing was left at "
                            f"{out}.") from None


def _write_backup(out: Path, passphrase: str) -> dict:
    counts = {}
    with archive.ArchiveWriter(out, passphrase) as writer:
        with _read_snapshot():
            with writer.sealed(DATABASE, content="database") as stream:
                stream.write("[")
                first = True
                for model in dumped_models():
                    counts[model._meta.label] = 0
                    for batch in _batches(model._base_manager.order_by(model._meta.pk.name).iterator(BATCH)):
                        text = serializers.serialize("json", batch, use_natural_foreign_keys=True, cls=_ExactEncoder)
                        stream.write(("" if first else ",") + text.strip()[1:-1])
                        counts[model._meta.label] += len(batch)
                        first = False
                stream.write("]")
            migrations = _applied_migrations()
            site_ids = list(Site.objects.order_by("pk").values_list("pk", flat=True))
        writer.add_bytes(SECRETS, json.dumps(_secrets()).encode(), content="keys")
        files = 0
        for relative, path in _files_below(Path(settings.CERT_DEPLOY_DIR)):
            writer.add_file(f"{CERT_FILES}/{relative}", path, content="certificate file",
                            mode=path.stat().st_mode & 0o777)
            files += 1
        layout = _layout()
        for site_id in site_ids:
            for relative, path in _files_below(layout.custom_dir(Site(pk=site_id))):
                writer.add_file(f"{CUSTOM_ADDITIONS}/{site_id}/{relative}", path, content="nginx addition",
                                mode=path.stat().st_mode & 0o777)
                files += 1
        return writer.finish(
            created_at=timezone.now().isoformat(),
            panel={"commit": _panel_commit()},
            database={"engine": connection.vendor, "rows": counts},
            migrations=migrations,
            files=files,
        )


# --- restore


def _existing_rows() -> dict[str, int]:
    tables = set(connection.introspection.table_names())
    found = {}
    for label, model in (("user(s)", get_user_model()), ("certificate(s)", Certificate), ("site(s)", Site)):
        if model._meta.db_table in tables:
            found[label] = model._base_manager.count()
    return {label: count for label, count in found.items() if count}


def refuse_unless_empty():
    found = _existing_rows()
    if found:
        held = ", ".join(f"{count} {label}" for label, count in found.items())
        raise BackupRefused(
            f"This installation is not empty: its database holds {held}. A restore goes into an empty "
            "installation only. Point DATABASE_URL at a new, empty database (or drop and create this one again), "
            "then run restore again. Nothing was changed.")


def _check_migrations(manifest):
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    unknown = sorted(f"{app}.{name}" for app, names in (manifest.get("migrations") or {}).items()
                     for name in names if (app, name) not in known)
    if unknown:
        commit = (manifest.get("panel") or {}).get("commit")
        raise BackupRefused(
            f"The archive was made by a newer version of the panel (its database has migration {unknown[0]}, "
            f"which this version does not know). Install that version{f' (commit {commit})' if commit else ''} "
            "and restore again. Nothing was changed.")


def _write_keys(secrets: dict, report: RestoreReport):
    keys = [key for key in secrets.get("encryption_keys") or [] if isinstance(key, str)]
    if encryption.keys_from_environment():
        report.notes.append(
            "CERTPANEL_ENCRYPTION_KEYS is set, so the panel takes its keys from there: the restored secrets are "
            "now encrypted with its first key as this command saw it. Give every panel process the same "
            "CERTPANEL_ENCRYPTION_KEYS (the archive's own keys were not written anywhere).")
    else:
        key_file = Path(settings.ENCRYPTION_KEY_FILE)
        existing = encryption._parse_keys(key_file.read_text()) if key_file.is_file() else []
        # The archive's keys first (the newest encrypts); this installation's own ones stay listed.
        write_atomic(key_file, "\n".join(keys + [k for k in existing if k not in keys]) + "\n", mode=0o600)
        report.notes.append(f"Encryption keys written to {key_file} (mode 0600).")
    secret_key = secrets.get("secret_key") or ""
    if os.environ.get("CERTPANEL_SECRET_KEY", "").strip():
        if secret_key != settings.SECRET_KEY:
            report.notes.append(
                "CERTPANEL_SECRET_KEY is set and differs from the backed-up installation's: set it to that "
                "installation's value if signed links made before the backup must stay valid (everyone signs in "
                "again either way).")
    elif secret_key:
        write_atomic(settings.SECRET_KEY_FILE, secret_key + "\n", mode=0o600)
        report.notes.append(f"Django's secret key written to {settings.SECRET_KEY_FILE} (mode 0600).")


def _load_rows(path: Path) -> int:
    with transaction.atomic():
        call_command("loaddata", str(path), verbosity=0)
        # loaddata moves the sequences of what it loaded; every table's, to be sure (sqlsequencereset).
        statements = connection.ops.sequence_reset_sql(no_style(), dumped_models())
        if statements:
            with connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)
    return Site.objects.count()


def _put_files_back(opened: archive.OpenedArchive) -> int:
    layout = _layout()
    put = 0
    for name, meta in sorted(opened.members.items()):
        top, _sep, rest = name.partition("/")
        if top == CERT_FILES:
            target = Path(settings.CERT_DEPLOY_DIR) / rest
        elif top == CUSTOM_ADDITIONS:
            site_id, _sep, relative = rest.partition("/")
            target = layout.custom_dir(Site(pk=int(site_id))) / relative
        else:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if top == CERT_FILES:
            os.chmod(target.parent, 0o700)  # as nginx.apply.write_certificate_files leaves it
        write_atomic(target, opened.path(name).read_bytes(), mode=int(meta.get("mode") or 0o600) & 0o777)
        put += 1
    return put


def _queue_nginx(report: RestoreReport):
    site_ids = list(Site.objects.order_by("pk").values_list("pk", flat=True))
    report.sites = len(site_ids)
    if not site_ids:
        return
    try:
        task_queue.require_reachable()
    except task_queue.QueueUnavailable:
        # Pending with no queue time: beat's resume_stalled_applies queues them on its first round.
        Site.objects.update(config_status=Site.ConfigStatus.PENDING, config_queued_at=None)
        report.notes.append(f"The task queue (Redis) is not reachable: the {len(site_ids)} site(s) wait as pending, "
                            "and beat queues their nginx apply once the panel runs.")
        return
    with transaction.atomic():
        for site_id in site_ids:
            dispatch.queue_site_apply(site_id)
    report.notes.append(f"nginx apply queued for {len(site_ids)} site(s): the deploy worker serves their "
                        "certificates again.")


def restore(archive_path, passphrase: str) -> RestoreReport:
    """Restore the archive into this (empty) installation. Raises BackupRefused or
    archive.ArchiveRefused, before changing anything, when it cannot."""
    refuse_unless_empty()
    report = RestoreReport()
    workdir = Path(tempfile.mkdtemp(dir=settings.DATA_DIR, prefix=".restore-"))
    try:
        opened = archive.open_archive(Path(archive_path), passphrase, workdir, SECRETS)
        _check_migrations(opened.manifest)
        if DATABASE not in opened.members:
            raise archive.ArchiveDamaged("The archive holds no database: it is incomplete.")
        # Checked whole: from here on, the installation changes.
        _write_keys(opened.secrets, report)
        try:
            call_command("migrate", interactive=False, verbosity=0)
        except Exception as exc:
            raise RestoreFailed(f"migrate failed ({exc}); no row was restored yet. Fix the database and run "
                                "restore again.") from exc
        refuse_unless_empty()  # nothing wrote meanwhile
        try:
            _load_rows(opened.path(DATABASE))
        except Exception as exc:
            raise RestoreFailed(f"loading the rows failed ({exc}); they were all rolled back, the database holds "
                                "the empty tables only. Run restore again once the cause is fixed.") from exc
        report.rows = sum((opened.manifest.get("database") or {}).get("rows", {}).values())
        report.files = _put_files_back(opened)
        _queue_nginx(report)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


# --- the scheduled backup


def scheduled_backup_path(directory: Path, now: datetime.datetime) -> Path:
    return Path(directory) / f"certpanel-backup-{now.astimezone(datetime.UTC):%Y%m%d-%H%M%S}.tar.gz"


def prune(directory: Path, keep: int) -> list[Path]:
    """Remove the scheduled backups in `directory` beyond the `keep` newest (and leftovers of
    runs that died). Other files are never touched."""
    directory = Path(directory)
    archives = sorted(p for p in directory.iterdir() if SCHEDULED_NAME.match(p.name) and p.is_file())
    removed = archives[:-keep] if keep else archives
    removed += [p for p in directory.iterdir()
                if p.name.endswith(".partial") and SCHEDULED_NAME.match(p.name[:-len(".partial")])]
    for path in removed:
        path.unlink(missing_ok=True)
    for staging in directory.iterdir():  # what a run killed while packing left (archive.ArchiveWriter)
        name, _sep, _suffix = staging.name.partition(".staging-")
        if staging.is_dir() and _sep and SCHEDULED_NAME.match(name.removeprefix(".")):
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
    return removed


def run_scheduled_backup(now=None):
    """Beat's daily backup into CERTPANEL_BACKUP_DIR, keeping CERTPANEL_BACKUP_KEEP archives.
    A failure is logged and told to the administrators; returns the archive's path or None."""
    if not settings.BACKUP_DIR:
        return None
    directory = Path(settings.BACKUP_DIR)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with file_lock(directory / ".certpanel-backup.lock"):
            out = scheduled_backup_path(directory, now or timezone.now())
            create_backup(out, read_passphrase_file(settings.BACKUP_PASSPHRASE_FILE))
            removed = prune(directory, settings.BACKUP_KEEP)
    except Exception as exc:
        log.exception("the scheduled backup into %s failed", directory)
        _tell_administrators(directory, exc)
        return None
    log.info("scheduled backup written to %s; %d older one(s) removed", out, len(removed))
    return out


def _tell_administrators(directory, exc):
    subject = _("The scheduled backup failed")
    body = _("The daily backup into %(directory)s failed: %(error)s\nThe panel goes on working without a fresh "
             "backup. Fix the cause, then check with: manage.py backup FILE") % {
        "directory": directory, "error": exc}
    for admin_id in get_user_model().objects.filter(is_superuser=True, is_active=True).values_list("pk", flat=True):
        notifications.notify(admin_id, "renewal_failed", subject, body)
