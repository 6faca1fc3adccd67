"""manage.py backup / restore, and the scheduled daily backup: what a restore gives back, and what
it refuses before changing anything."""

import datetime
import gzip
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from certs.models import AcmeAccount, Certificate, CertificateVersion, DnsCredential, NotificationChannel
from panel.maintenance import archive, backup
from panel.models import Site
from panel.toolkit import encryption
from tests.support import REPO_ROOT, TemporaryPostgresDatabase, postgres_available

PASSPHRASE = "correct horse battery staple"
DNS_SECRET = "tsig-secret-Zm9vYmFy"
KEY_PEM = "-----BEGIN PRIVATE KEY-----\nkey-of-the-certificate\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def installation(settings, tmp_path):
    """Where the panel keeps its keys and files, in this test's directory."""
    settings.ENCRYPTION_KEYS = None
    settings.ENCRYPTION_KEY_FILE = tmp_path / "data" / "encryption.keys"
    settings.SECRET_KEY_FILE = tmp_path / "data" / "django-secret.key"
    settings.CERT_DEPLOY_DIR = tmp_path / "data" / "certs"
    settings.NGINX_VHOST_DIR = tmp_path / "data" / "sites"
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    settings.SECRET_KEY_FILE.write_text(settings.SECRET_KEY + "\n")
    return settings


@pytest.fixture
def passphrase_file(tmp_path):
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\nthe second line is not part of it\n")
    return path


@pytest.fixture
def populated(installation, transactional_db):
    alice = get_user_model().objects.create_superuser("alice", "alice@example.test", "pw-alice-123")
    get_user_model().objects.create_user("bob", password="pw-bob-123")
    credential = DnsCredential.objects.create(owner=alice, provider="rfc2136", name="BIND",
                                              credentials=json.dumps({"tsig_secret": DNS_SECRET}))
    NotificationChannel.objects.create(owner=alice, name="hook", url="json://hooks.example.test/secret-path")
    account = AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/dir", account_key="ACCOUNT PEM",
                                         account_url="https://ca.test/acct/1")
    site = Site.objects.create(owner=alice, domains=["shop.example.test"], root="/srv/www/shop",
                               config_status=Site.ConfigStatus.APPLIED)
    cert = Certificate.objects.create(owner=alice, account=account, site=site, domains=["shop.example.test"],
                                      challenge="dns-01", dns_credential=credential)
    version = CertificateVersion.objects.create(certificate=cert, cert_pem="LEAF", chain_pem="LEAF+CHAIN",
                                                private_key=KEY_PEM, serial="abc123", issuer="CN=Test CA",
                                                not_before="2026-01-01T00:00Z", not_after="2026-04-01T00:00Z")
    Certificate.objects.filter(pk=cert.pk).update(current_version=version)
    files = installation.CERT_DEPLOY_DIR / f"cert-{cert.pk}" / f"v{version.pk}"
    files.mkdir(parents=True)
    (files / "privkey.pem").write_text(KEY_PEM)
    (files / "privkey.pem").chmod(0o600)
    (files / "fullchain.pem").write_text("LEAF+CHAIN")
    custom = backup._layout().custom_dir(site)
    custom.mkdir(parents=True)
    (custom / "shop headers.conf").write_text("add_header X-Shop yes;\n")
    return {"site": site, "credential": credential, "version": version, "files": files}


def rows():
    """Every dumped model's rows as the panel reads them (secrets decrypted)."""
    found = {}
    for model in backup.dumped_models():
        values = list(model._base_manager.order_by("pk").values())
        if model is Site:  # a restore queues each site's nginx apply again
            for row in values:
                row.pop("config_status"), row.pop("config_queued_at")
        found[model._meta.label] = values
    return found


def make_backup(tmp_path, passphrase_file, name="backup.tar.gz"):
    out = tmp_path / name
    call_command("backup", str(out), passphrase_file=str(passphrase_file), stdout=io.StringIO())
    return out


def empty_the_database(installation):
    """A fresh installation: no rows, no files, no keys."""
    call_command("flush", interactive=False, verbosity=0)
    installation.ENCRYPTION_KEY_FILE.unlink()
    for directory in (installation.CERT_DEPLOY_DIR, installation.NGINX_VHOST_DIR):
        shutil.rmtree(directory)


def restore(path, passphrase_file):
    out = io.StringIO()
    call_command("restore", str(path), passphrase_file=str(passphrase_file), stdout=out)
    return out.getvalue()


def members(path):
    with tarfile.open(path, "r:gz") as tar:
        return {info.name: tar.extractfile(info).read() for info in tar}


def repack(path, changed: dict, out):
    """The archive at `path` with some members' bytes replaced, packed again as tar.gz."""
    with tarfile.open(out, "w:gz") as tar:
        for name, data in {**members(path), **changed}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


@pytest.fixture
def quiet_queue():
    """The restore's nginx applies are recorded here instead of reaching Redis."""
    with mock.patch("panel.maintenance.backup.task_queue.require_reachable"), \
            mock.patch("panel.deployment.dispatch.APPLY_SITE") as apply_site:
        yield apply_site


def test_a_restore_gives_back_the_rows_the_keys_and_the_files(populated, installation, tmp_path, passphrase_file,
                                                              quiet_queue):
    before = rows()
    [old_key] = encryption.current_keys()
    out = make_backup(tmp_path, passphrase_file)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not out.with_name(out.name + ".partial").exists()
    raw = gzip.decompress(out.read_bytes())
    for secret in (DNS_SECRET, old_key, "key-of-the-certificate", "secret-path", installation.SECRET_KEY):
        assert secret.encode() not in raw  # sealed with the passphrase, every one of them
    manifest = json.loads(members(out)["manifest.json"])
    assert manifest["format_version"] == 1 and manifest["database"]["engine"] == connection.vendor
    assert manifest["database"]["rows"]["certs.DnsCredential"] == 1
    assert "0001_initial" in manifest["migrations"]["panel"]
    assert all(len(member["sha256"]) == 64 for member in manifest["members"].values())

    empty_the_database(installation)
    assert not DnsCredential.objects.exists()
    output = restore(out, passphrase_file)

    after = rows()
    for label in before:
        assert after[label] == before[label], label
    assert DnsCredential.objects.get().values() == {"tsig_secret": DNS_SECRET}
    assert encryption.current_keys() == [old_key]
    assert stat.S_IMODE(installation.ENCRYPTION_KEY_FILE.stat().st_mode) == 0o600
    assert (populated["files"] / "privkey.pem").read_text() == KEY_PEM
    assert stat.S_IMODE((populated["files"] / "privkey.pem").stat().st_mode) == 0o600
    custom = backup._layout().custom_dir(populated["site"])
    assert (custom / "shop headers.conf").read_text() == "add_header X-Shop yes;\n"
    # nginx is applied again for the site, so its certificate is served
    quiet_queue.delay.assert_called_once_with(populated["site"].pk)
    assert Site.objects.get().config_status == Site.ConfigStatus.PENDING
    assert "nginx apply queued for 1 site(s)" in output
    assert old_key not in output and DNS_SECRET not in output
    # new rows do not collide with restored ids
    assert Site.objects.create(owner=get_user_model().objects.first(), domains=["new.example.test"]).pk > \
        populated["site"].pk


def test_with_keys_from_the_environment_the_restored_secrets_take_its_key(populated, installation, tmp_path,
                                                                          passphrase_file, quiet_queue):
    out = make_backup(tmp_path, passphrase_file)
    empty_the_database(installation)
    environment_key = Fernet.generate_key().decode()
    installation.ENCRYPTION_KEYS = environment_key
    output = restore(out, passphrase_file)
    assert "CERTPANEL_ENCRYPTION_KEYS is set" in output and "Give every panel process the same" in output
    assert environment_key not in output
    assert not installation.ENCRYPTION_KEY_FILE.exists()
    assert DnsCredential.objects.get().values() == {"tsig_secret": DNS_SECRET}
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM certs_dnscredential")
        [(token,)] = cursor.fetchall()
    assert json.loads(Fernet(environment_key).decrypt(token.encode())) == {"tsig_secret": DNS_SECRET}


def assert_nothing_changed(installation):
    assert not get_user_model().objects.exists() and not Site.objects.exists()
    assert not installation.ENCRYPTION_KEY_FILE.exists()
    assert not installation.CERT_DEPLOY_DIR.exists()


def refusal(path, passphrase_file):
    with pytest.raises(CommandError) as refused:
        restore(path, passphrase_file)
    return str(refused.value)


def test_a_tampered_member_is_refused_and_nothing_changes(populated, installation, tmp_path, passphrase_file):
    out = make_backup(tmp_path, passphrase_file)
    database = bytearray(members(out)["database.json"])
    database[200] ^= 1
    tampered = repack(out, {"database.json": bytes(database)}, tmp_path / "tampered.tar.gz")
    empty_the_database(installation)
    message = refusal(tampered, passphrase_file)
    assert "database.json does not match its checksum" in message and "altered" in message
    assert_nothing_changed(installation)

    # the checksum put right in the manifest: its seal no longer matches
    manifest = json.loads(members(out)["manifest.json"])
    manifest["members"]["database.json"]["sha256"] = archive.hashlib.sha256(database).hexdigest()
    forged = repack(out, {"database.json": bytes(database), "manifest.json": json.dumps(manifest).encode()},
                    tmp_path / "forged.tar.gz")
    assert "manifest was changed" in refusal(forged, passphrase_file)
    assert_nothing_changed(installation)


def test_a_truncated_archive_is_refused(populated, installation, tmp_path, passphrase_file):
    out = make_backup(tmp_path, passphrase_file)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(out.read_bytes()[: out.stat().st_size - 100])
    empty_the_database(installation)
    message = refusal(cut, passphrase_file)
    assert "cannot be read to its end" in message and "complete copy" in message
    assert_nothing_changed(installation)

    # cut at a member's end and packed again properly: the manifest misses what is gone
    kept = {name: data for name, data in members(out).items() if not name.startswith("nginx-custom/")}
    short = tmp_path / "short.tar.gz"
    with tarfile.open(short, "w:gz") as tar:
        for name, data in kept.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert "lacks 1 member(s)" in refusal(short, passphrase_file)
    assert_nothing_changed(installation)


def test_a_wrong_passphrase_is_refused(populated, installation, tmp_path, passphrase_file):
    out = make_backup(tmp_path, passphrase_file)
    empty_the_database(installation)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")
    message = refusal(out, wrong)
    assert "passphrase does not open this archive" in message
    assert_nothing_changed(installation)


def test_an_archive_from_a_newer_panel_is_refused(populated, installation, tmp_path, passphrase_file):
    out = make_backup(tmp_path, passphrase_file)
    manifest = json.loads(members(out)["manifest.json"])
    empty_the_database(installation)
    newer_format = repack(out, {"manifest.json": json.dumps({**manifest, "format_version": 2}).encode()},
                          tmp_path / "newer.tar.gz")
    assert "backup format version 2; this panel reads version 1" in refusal(newer_format, passphrase_file)
    manifest["migrations"]["certs"].append("0099_from_the_future")
    with pytest.raises(backup.BackupRefused, match="newer version of the panel .* certs.0099_from_the_future"):
        backup._check_migrations(manifest)
    assert_nothing_changed(installation)


def test_a_restore_into_a_database_with_users_is_refused(populated, installation, tmp_path, passphrase_file):
    out = make_backup(tmp_path, passphrase_file)
    message = refusal(out, passphrase_file)
    assert "not empty" in message and "2 user(s)" in message and "1 certificate(s)" in message
    assert "empty database" in message
    assert DnsCredential.objects.get().values() == {"tsig_secret": DNS_SECRET}


def test_a_backup_needs_a_passphrase_and_never_overwrites(populated, tmp_path, passphrase_file):
    with mock.patch("sys.stdin") as stdin:
        stdin.isatty.return_value = False
        with pytest.raises(CommandError, match="No passphrase: give --passphrase-file"):
            call_command("backup", str(tmp_path / "b.tar.gz"))
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(CommandError, match="too short"):
        call_command("backup", str(tmp_path / "b.tar.gz"), passphrase_file=str(short))
    existing = make_backup(tmp_path, passphrase_file)
    before = existing.read_bytes()
    with pytest.raises(CommandError, match="exists already"):
        make_backup(tmp_path, passphrase_file)
    assert existing.read_bytes() == before
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".backup.tar.gz.staging-*"))


def test_scheduled_backups_keep_the_newest(populated, installation, tmp_path, passphrase_file):
    installation.BACKUP_DIR = tmp_path / "backups"
    installation.BACKUP_KEEP = 2
    installation.BACKUP_PASSPHRASE_FILE = passphrase_file
    installation.BACKUP_DIR.mkdir()
    unrelated = installation.BACKUP_DIR / "keep-me.tar.gz"
    unrelated.write_text("mine")
    died = installation.BACKUP_DIR / "certpanel-backup-20260101-031700.tar.gz.partial"
    died.write_text("half")
    (installation.BACKUP_DIR / ".certpanel-backup-20260101-031700.tar.gz.staging-x1y2").mkdir()
    start = datetime.datetime(2026, 3, 1, 3, 17, tzinfo=datetime.UTC)
    written = [backup.run_scheduled_backup(start + datetime.timedelta(days=day)) for day in range(4)]
    assert all(written)
    left = sorted(p.name for p in installation.BACKUP_DIR.iterdir() if p.name != ".certpanel-backup.lock")
    assert left == ["certpanel-backup-20260303-031700.tar.gz", "certpanel-backup-20260304-031700.tar.gz",
                    "keep-me.tar.gz"]
    assert json.loads(members(written[-1])["manifest.json"])["database"]["rows"]["panel.Site"] == 1


def test_a_failed_scheduled_backup_is_told_to_the_administrators(populated, installation, tmp_path, caplog):
    installation.BACKUP_DIR = tmp_path / "backups"
    installation.BACKUP_PASSPHRASE_FILE = tmp_path / "gone"
    NotificationChannel.objects.update(events=["renewal_failed"])
    with mock.patch("certs.notifications.enqueue") as enqueue:
        assert backup.run_scheduled_backup() is None
    assert "the scheduled backup into" in caplog.text
    [(channel_id, event, subject, body)] = [c.args for c in enqueue.call_args_list]
    assert channel_id == NotificationChannel.objects.get().pk and subject == "The scheduled backup failed"
    assert "cannot be read" in body and str(installation.BACKUP_DIR) in body


# --- into another installation, through manage.py as an operator runs it


def manage(data_dir, database_url, *args):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CERTPANEL_", "NGINX_"))}
    env.update({"CERTPANEL_DATA_DIR": str(data_dir), "DATABASE_URL": database_url,
                "REDIS_URL": "redis://127.0.0.1:9/0", "DJANGO_SETTINGS_MODULE": "panel.settings"})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


READ_BACK = """
import json
from certs.models import DnsCredential, CertificateVersion
from panel.models import Site
from django.contrib.auth import get_user_model
found = {"users": sorted(get_user_model().objects.values_list("username", flat=True)),
         "dns": DnsCredential.objects.get().values(), "key": CertificateVersion.objects.get().private_key,
         "sites": list(Site.objects.values_list("primary_domain", "config_status"))}
found["new_site"] = Site.objects.create(owner=get_user_model().objects.first(), domains=["new.example.test"]).pk
print(json.dumps(found))
"""


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not reachable on 127.0.0.1:5432")
def test_a_sqlite_backup_restores_into_postgresql_and_back(populated, installation, tmp_path, passphrase_file,
                                                           quiet_queue):
    before = rows()
    out = make_backup(tmp_path, passphrase_file)
    target = TemporaryPostgresDatabase(prefix="certpanel_restore").create()
    try:
        data_dir = tmp_path / "postgres-installation"
        wrong = tmp_path / "wrong"
        wrong.write_text("not the passphrase at all\n")
        refused = manage(data_dir, target.url, "restore", str(out), "--passphrase-file", str(wrong))
        assert refused.returncode != 0 and "passphrase does not open this archive" in refused.stderr
        assert not (data_dir / "encryption.keys").exists()

        restored = manage(data_dir, target.url, "restore", str(out), "--passphrase-file", str(passphrase_file))
        assert restored.returncode == 0, restored.stderr
        assert "The task queue (Redis) is not reachable" in restored.stdout
        assert (data_dir / "certs" / populated["files"].relative_to(installation.CERT_DEPLOY_DIR)
                / "privkey.pem").read_text() == KEY_PEM
        assert stat.S_IMODE((data_dir / "encryption.keys").stat().st_mode) == 0o600
        read = manage(data_dir, target.url, "shell", "-c", READ_BACK)
        assert read.returncode == 0, read.stderr
        found = json.loads(read.stdout.strip().splitlines()[-1])
        assert found.pop("new_site") > populated["site"].pk  # the sequences moved past the restored ids
        assert found == {"users": ["alice", "bob"], "dns": {"tsig_secret": DNS_SECRET}, "key": KEY_PEM,
                         "sites": [["shop.example.test", "pending"]]}

        again = manage(data_dir, target.url, "restore", str(out), "--passphrase-file", str(passphrase_file))
        assert again.returncode != 0 and "not empty" in again.stderr

        # A backup of PostgreSQL (one REPEATABLE READ transaction) restores into SQLite.
        from_postgres = tmp_path / "from-postgres.tar.gz"
        made = manage(data_dir, target.url, "backup", str(from_postgres), "--passphrase-file", str(passphrase_file))
        assert made.returncode == 0, made.stderr
        assert json.loads(members(from_postgres)["manifest.json"])["database"]["engine"] == "postgresql"
    finally:
        target.drop()
    empty_the_database(installation)
    restore(from_postgres, passphrase_file)
    after = rows()
    assert len(after["panel.Site"]) == 2
    for label in before:
        if label != "panel.Site":
            assert after[label] == before[label], label
    assert DnsCredential.objects.get().values() == {"tsig_secret": DNS_SECRET}


SNAPSHOT = """
import sqlite3, time
from django.conf import settings
from django.db import connection
from panel.maintenance.backup import _read_snapshot
path = settings.DATABASES["default"]["NAME"]
writer = sqlite3.connect(path, timeout=1)
writer.executescript("PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);")
count = lambda: connection.cursor().execute("SELECT count(*) FROM t").fetchone()[0]
with _read_snapshot():
    seen = count()
    started = time.monotonic()
    writer.execute("INSERT INTO t VALUES (2)")
    writer.commit()
    print(round(time.monotonic() - started, 3), seen, count())
print(count())
"""


def test_the_sqlite_snapshot_blocks_no_writer_and_sees_none_of_their_rows(tmp_path):
    # The panel's own SQLite transactions take the write lock at BEGIN; the backup's must not.
    database = tmp_path / "panel.sqlite3"
    result = manage(tmp_path / "data", f"sqlite:///{database}", "shell", "-c", SNAPSHOT)
    assert result.returncode == 0, result.stderr
    waited, before, during, after = " ".join(result.stdout.strip().splitlines()[-2:]).split()
    assert float(waited) < 0.5 and (before, during, after) == ("1", "1", "2")
