"""Importing from an uploaded archive of an acme.sh home or a certbot config dir (the admin
page): extracted safely into a temporary directory that is always removed, then read and
stored like the management commands do, except that the reader is confined to the directory
it reads: a file a conf names elsewhere is another machine's path, not read from this server.

Safely: no absolute names, no "..", no devices, limits on the number of members and their
total size, and symbolic links made last, only when they lead inside without passing through
another link (by hand for tar and zip alike: tarfile's "data" filter alone has let chains of
links out on Pythons before 3.11.13), so an archive cannot write outside its directory or
fill the disk. A link that would lead outside is left out and the report says so: certbot
itself writes absolute links (accounts/acme-v02… -> /etc/letsencrypt/accounts/acme-v01…), and
one such link must not refuse the whole archive.
"""

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from django.utils.translation import gettext as _

from certs import importers
from certs.importers.store import ImportReport, import_found

MAX_ARCHIVE_BYTES = 50 * 1024 * 1024  # thousands of certificates are a few megabytes
MAX_EXTRACTED_BYTES = 200 * 1024 * 1024
MAX_MEMBERS = 20000
SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
# The page imports inside one web request, which gunicorn ends after 30 s: bench/import measured
# ~20 ms per certificate on PostgreSQL plus ~12 ms to unpack its files. More goes through the command.
MAX_PAGE_CERTIFICATES = 500


class ArchiveError(Exception):
    """The archive cannot be used; the message says why, for the page."""


def import_archive(archive, client, owner, dry_run) -> ImportReport:
    """Extract `archive` (an uploaded file), find the client's directory in it (`client`
    "" to detect it) and import it for `owner`. Raises ArchiveError."""
    with extracted(archive) as (root, left_out):
        home, client = find_home(root, client)
        found = importers.reader(client)(str(home), confined=True)
        if len(found.certificates) > MAX_PAGE_CERTIFICATES:
            raise ArchiveError(
                _("This archive holds more certificates (%(count)d) than this page imports at once (%(limit)d). Copy "
                  "the directory to the server and run “manage.py import_%(command)s PATH” there, or upload it in "
                  "parts.")
                % {"count": len(found.certificates), "limit": MAX_PAGE_CERTIFICATES,
                   "command": "acmesh" if client == importers.ACMESH else "certbot"})
        report = import_found(found, owner, dry_run=dry_run)
    report.without_prefix(f"{root}{os.sep}", archive.name)  # paths as they are in the archive
    report.left_out = left_out
    return report


@contextmanager
def extracted(archive):
    """(a temporary directory holding the archive's files, [why each link left out was left out]);
    the directory is removed afterwards whatever happens."""
    if archive.size > MAX_ARCHIVE_BYTES:
        raise ArchiveError(_("The archive is larger than %(size)d MB.") % {"size": MAX_ARCHIVE_BYTES // 2 ** 20})
    directory = Path(tempfile.mkdtemp(prefix="certpanel-import-"))  # 0700: it holds private keys for a moment
    try:
        archive.seek(0)
        is_zip = zipfile.is_zipfile(archive)
        archive.seek(0)
        yield directory, (_extract_zip if is_zip else _extract_tar)(archive, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _unsupported():
    return ArchiveError(_("This is not a .tar.gz, .tgz, .tar or .zip archive, or it is damaged."))


def _check_name(name):
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\x00" in name:
        raise ArchiveError(_("The archive member “%(name)s” would be written outside the archive's folder; "
                             "it is refused.") % {"name": name})


class _Budget:
    def __init__(self):
        self.members = self.bytes = 0

    def take(self, size):
        self.members += 1
        self.bytes += max(size, 0)
        if self.members > MAX_MEMBERS:
            raise ArchiveError(_("The archive holds more than %(count)d files.") % {"count": MAX_MEMBERS})
        if self.bytes > MAX_EXTRACTED_BYTES:
            raise ArchiveError(_("The archive's files add up to more than %(size)d MB.")
                               % {"size": MAX_EXTRACTED_BYTES // 2 ** 20})


def _extract_tar(archive, directory):
    budget, members, files, links, left_out = _Budget(), [], set(), [], []
    try:
        with tarfile.open(fileobj=archive, mode="r:*") as tar:
            for member in tar:  # one header at a time: a bomb of headers stops at the limit
                budget.take(member.size)
                _check_name(member.name)
                if member.issym():
                    links.append((member.name, member.linkname))  # made last, by _make_links
                    continue
                if member.islnk() and PurePosixPath(member.linkname) not in files:
                    left_out.append(_left_out(member.name, member.linkname))
                    continue
                if not (member.isfile() or member.isdir() or member.islnk()):
                    raise _not_a_file(member.name)
                if member.isfile():
                    files.add(PurePosixPath(member.name))
                members.append(member)
            # No symbolic link exists yet, so "data" (no absolute or outside paths, no devices, no set-uid
            # bits) judges every path as it is written, whatever this Python's tarfile gets wrong about links.
            tar.extractall(directory, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise ArchiveError(_("The archive member “%(name)s” is refused: %(reason)s")
                           % {"name": exc.tarinfo.name, "reason": exc}) from None
    except (tarfile.TarError, EOFError, OSError, ValueError):
        raise _unsupported() from None
    return left_out + _make_links(directory, links)


def _extract_zip(archive, directory):
    budget, links = _Budget(), []
    try:
        with zipfile.ZipFile(archive) as zip_file:
            infos = zip_file.infolist()
            for info in infos:
                budget.take(info.file_size)
                _check_name(info.filename)
            for info in infos:
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    links.append((info.filename, zip_file.read(info).decode("utf-8", "replace")))
                elif stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise _not_a_file(info.filename)
                else:
                    zip_file.extract(info, directory)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError):
        raise _unsupported() from None
    return _make_links(directory, links)


def _not_a_file(name):
    return ArchiveError(_("The archive member “%(name)s” is not a file or a folder; it is refused.") % {"name": name})


def _left_out(name, target):
    return _("%(name)s → %(target)s: this link leads outside the archive's folder, so it was left out.") % {
        "name": name, "target": target}


def _make_links(directory, links):
    """certbot's live/ links into archive/, made after every file so nothing is written through
    them. Each must lead inside the archive's folder without passing through another link: then
    where it leads can be worked out from the names alone, and no chain of links (a -> b/c/../..,
    b -> .) can lead out. Returns why each other link was left out."""
    names = {PurePosixPath(name) for name, _ in links}
    inside = [(name, target) for name, target in links if _stays_inside(PurePosixPath(name), target, names)]
    left_out = [_left_out(name, target) for name, target in links if (name, target) not in inside]
    try:
        for name, target in inside:
            path = directory.joinpath(*PurePosixPath(name).parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, path)
    except OSError:  # two members of one name, or a link where a folder is
        raise _unsupported() from None
    return left_out


def _stays_inside(link, target, links):
    """Whether `target`, read from the folder of `link`, names a path inside the archive's
    folder and no other link is on the way there (nor above the link itself)."""
    if not target or "\x00" in target or PurePosixPath(target).is_absolute():
        return False
    if any(parent in links for parent in link.parents):
        return False
    parts = list(link.parent.parts)
    for part in PurePosixPath(target).parts:
        if part == "..":
            if not parts:
                return False
            parts.pop()
        elif part != ".":
            parts.append(part)
            if PurePosixPath(*parts) in links:
                return False
    return True


def find_home(root, client=""):
    """(directory, client) of the acme.sh home or certbot config dir in the archive: its top
    folder itself, or a folder up to two levels down. Raises ArchiveError."""
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    candidates += sorted(p for parent in candidates[1:] for p in parent.iterdir() if p.is_dir() and not p.is_symlink())
    for candidate in candidates:
        found = importers.detect(candidate)
        if found and (not client or found == client):
            return candidate, found
    if client:
        raise ArchiveError(_("The archive does not hold %(expected)s.") % {"expected": importers.EXPECTED[client]})
    raise ArchiveError(_("The archive holds neither %(acmesh)s nor %(certbot)s.")
                       % {"acmesh": importers.EXPECTED[importers.ACMESH],
                          "certbot": importers.EXPECTED[importers.CERTBOT]})
