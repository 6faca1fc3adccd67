"""What `import_acmesh` and `import_certbot` share: find the owner, read, store, report.
(A leading underscore: Django does not offer this module as a command.)"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from certs import importers
from certs.importers.store import import_found


class ImportCommand(BaseCommand):
    client = ""  # certs.importers.ACMESH or CERTBOT

    def add_arguments(self, parser):
        parser.add_argument("path", help=importers.EXPECTED[self.client])
        parser.add_argument("--owner", metavar="USER", help="the user who owns what is imported (default: the "
                                                            "only administrator)")
        parser.add_argument("--dry-run", action="store_true", help="only say what would be imported, store nothing")

    def handle(self, *args, path, owner, dry_run, **options):
        if importers.detect(path) != self.client:
            raise CommandError(f"{path} is not {importers.EXPECTED[self.client]}")
        owner = self._owner(owner)
        report = import_found(importers.reader(self.client)(path), owner, dry_run=dry_run)
        self.stdout.write(report.as_text(), ending="")
        if report.incomplete:
            raise CommandError("some items were not imported (see above); the rest was"
                               + (" checked" if dry_run else " imported"), returncode=1)

    @staticmethod
    def _owner(username):
        users = get_user_model().objects
        if username:
            try:
                return users.get(username=username)
            except users.model.DoesNotExist:
                raise CommandError(f"no user {username!r}") from None
        admins = list(users.filter(is_superuser=True, is_active=True)[:2])
        if len(admins) != 1:
            raise CommandError("there is not exactly one administrator: say who owns the import with --owner USER")
        return admins[0]
