"""Root's part in the installed split (scripts/install): web, the ACME worker and beat run as
settings.SERVICE_USER, only the deploy worker as root. Whatever that worker takes from the
database or Redis may have been written by a compromised service-user process, so root does
only what an administrator wrote down in a root-owned file: the reload commands listed in
settings.ROOT_COMMANDS_FILE. Any other command runs as the service user.

The file: one command per line, split into words like a shell does (shlex: quotes group words,
`#` starts a comment, blank lines are skipped); a preset runs as root only if its argv is exactly
one of these lines' words. The file must be owned by root and writable by nobody else, or it is
ignored (nothing runs as root) with a warning in the log. It is read at every run: an edit needs
no restart.
"""

import logging
import os
import pwd
import shlex
import stat
from dataclasses import dataclass

from django.conf import settings

log = logging.getLogger(__name__)


def running_as_root_for_service() -> bool:
    """Whether this is the installed split's root process (the deploy worker): root, with a
    service user named. Outside it (make run, tests, compose) nothing here changes anything."""
    return os.geteuid() == 0 and bool(settings.SERVICE_USER)


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    def popen_arguments(self) -> dict:
        """What subprocess.Popen takes to start a program as this account."""
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}


def service_account() -> Account:
    """settings.SERVICE_USER's account. Raises KeyError if there is no such user."""
    entry = pwd.getpwnam(settings.SERVICE_USER)
    groups = tuple(g for g in os.getgrouplist(entry.pw_name, entry.pw_gid) if g != entry.pw_gid)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)


def root_commands() -> set[tuple[str, ...]]:
    """The argv lists settings.ROOT_COMMANDS_FILE allows root to run; none without a trustworthy
    file."""
    path = settings.ROOT_COMMANDS_FILE
    if not path:
        return set()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        log.warning("%s cannot be read (%s): no reload command runs as root", path, exc.strerror or exc)
        return set()
    with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            log.warning("%s is ignored: it must be a file owned by root and writable by root alone "
                        "(chown root %s; chmod go-w %s); no reload command runs as root", path, path, path)
            return set()
        lines = handle.read().splitlines()
    allowed = set()
    for number, line in enumerate(lines, start=1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            log.warning("%s line %d is ignored: %s", path, number, exc)
            continue
        if words:
            allowed.add(tuple(words))
    return allowed


def account_for_command(command) -> Account | None:
    """Whom `command` (an argv list) runs as: None for this process's own user (outside the
    installed split, or a command listed in the root commands file), else the service account."""
    if not running_as_root_for_service():
        return None
    if tuple(command) in root_commands():
        return None
    return service_account()
