from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from panel.maintenance import archive, backup
from panel.management.commands._passphrase import passphrase


class Command(BaseCommand):
    help = ("Restore an archive written by `manage.py backup` into this installation, which must be empty (a new "
            "database, SQLite or PostgreSQL as DATABASE_URL says). The whole archive is read and checked first "
            "(complete, checksums, passphrase); only then are the keys written, the database migrated and loaded, "
            "the files put back and nginx re-applied for every site.")

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="IN", help="the archive to restore")
        parser.add_argument("--passphrase-file", help="a file whose first line is the passphrase (else typed on a "
                            "terminal)")

    def handle(self, *args, path, passphrase_file, **options):
        try:
            backup.refuse_unless_empty()  # before asking for a passphrase
            secret = passphrase(passphrase_file, confirm=False)
            report = backup.restore(Path(path), secret)
        except (backup.BackupRefused, archive.ArchiveRefused) as exc:
            raise CommandError(f"Restore refused: {exc}") from None
        except backup.RestoreFailed as exc:
            raise CommandError(f"Restore failed: {exc}") from None
        self.stdout.write(f"Restored {report.rows} rows and {report.files} file(s) from {path}.")
        for note in report.notes:
            self.stdout.write(note)
        self.stdout.write("Done: start the panel (web, workers, beat).")

