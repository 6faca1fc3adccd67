from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from panel.maintenance import archive, backup
from panel.management.commands._passphrase import passphrase


class Command(BaseCommand):
    help = ("Write one archive (mode 0600) holding a consistent snapshot of the database, the encryption keys and "
            "Django's secret key, the certificate files and each site's custom nginx additions, with a manifest "
            "of checksums. Everything but the manifest is sealed with the passphrase. The panel keeps running.")

    def add_arguments(self, parser):
        parser.add_argument("out", help="the archive to write, e.g. certpanel-2026-01-31.tar.gz (must not exist)")
        parser.add_argument("--passphrase-file", help="a file whose first line is the passphrase (else typed twice "
                            "on a terminal)")

    def handle(self, *args, out, passphrase_file, **options):
        secret = passphrase(passphrase_file, confirm=True)
        try:
            manifest = backup.create_backup(Path(out), secret)
        except (backup.BackupRefused, archive.ArchiveRefused) as exc:
            raise CommandError(str(exc)) from None
        rows, engine = sum(manifest["database"]["rows"].values()), manifest["database"]["engine"]
        self.stdout.write(f"Backup written to {Path(out).absolute()}: {rows} rows of the {engine} "
                          f"database, {manifest['files']} file(s). Keep the passphrase apart from the archive: "
                          "without it the archive cannot be restored.")
