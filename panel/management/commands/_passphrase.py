"""Where backup and restore get the passphrase: --passphrase-file (its first line), else typed
on a terminal, else nowhere (a command run by a script must name a file)."""

import getpass
import sys

from django.core.management.base import CommandError

from panel.maintenance import backup


def passphrase(passphrase_file, confirm: bool) -> str:
    if passphrase_file:
        try:
            return backup.read_passphrase_file(passphrase_file)
        except backup.BackupRefused as exc:
            raise CommandError(str(exc)) from None
    if not sys.stdin.isatty():
        raise CommandError("No passphrase: give --passphrase-file FILE (its first line is the passphrase), or run "
                           "this on a terminal to type it.")
    typed = getpass.getpass("Backup passphrase: ")
    if confirm and getpass.getpass("The same passphrase again: ") != typed:
        raise CommandError("The two passphrases differ: nothing was written. Run the command again.")
    if not typed:
        raise CommandError("The passphrase is empty.")
    return typed
