from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from panel.toolkit import encryption


class Command(BaseCommand):
    help = ("Put a new encryption key first in DATA_DIR/encryption.keys and re-encrypt every stored secret "
            "with it; --drop-old then removes the older keys. With CERTPANEL_ENCRYPTION_KEYS set, the "
            "environment owns the keys: put a new key first there, restart, then run this to re-encrypt.")

    def add_arguments(self, parser):
        parser.add_argument("--drop-old", action="store_true",
                            help="after re-encrypting, keep only the newest key (key file only)")

    def handle(self, *args, drop_old, **options):
        from_environment = encryption.keys_from_environment()
        if from_environment and drop_old:
            raise CommandError("the keys come from CERTPANEL_ENCRYPTION_KEYS: remove the old keys there yourself "
                               "after this command has re-encrypted everything (run it without --drop-old)")
        if from_environment:
            self.stdout.write("CERTPANEL_ENCRYPTION_KEYS is set: no new key is generated; re-encrypting with "
                              "its first key.")
        else:
            encryption.rotate_key_file()
            self.stdout.write(f"New key added first in {settings.ENCRYPTION_KEY_FILE}.")
        for model, rows in encryption.reencrypt_all().items():
            self.stdout.write(f"{model}: {rows} row(s) re-encrypted")
        if drop_old:
            encryption.drop_old_keys()
            self.stdout.write("Old keys removed: only the newest key remains.")
