"""Files written so a reader sees the old content or the new, never a part of either; and a
lock that lets one process at a time on this machine do a piece of work.

A write is staged in a fresh file beside its target (mkstemp: a new name, created
exclusively, so nobody's symbolic link can redirect it), given its mode before any byte is
written, flushed to disk, then renamed over the target; the directory is flushed too, so the
rename survives a crash. A caller that must replace several files together stages them all
first (a failure then leaves every previous file untouched) and puts them in place at once.
"""

import fcntl
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def write_atomic(path, data: str | bytes, mode: int = 0o644, owner: tuple[int, int] | None = None) -> None:
    """Replace `path` with `data` (text is written as UTF-8), with `mode` and, if given, `owner`
    (uid, gid). Raises OSError; no temporary file is left behind."""
    tmp = stage(path, data, mode, owner)
    try:
        put_in_place([(tmp, path)])
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_new(path, data: str | bytes, mode: int = 0o600) -> bool:
    """Create `path` with `data` unless it exists: several processes may race to create it,
    and it appears complete or not at all. Returns whether this call created it."""
    path = Path(path)
    tmp = stage(path, data, mode)
    try:
        os.link(tmp, path)  # unlike a rename, never replaces the winner's file
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    _fsync_directory(path.parent)
    return True


def stage(path, data: str | bytes, mode: int = 0o644, owner: tuple[int, int] | None = None) -> Path:
    """A fresh file beside `path` holding `data`, with `mode` (and `owner`), flushed to disk.
    The caller puts it in place (put_in_place) or removes it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if owner is not None and owner != (os.getuid(), os.getgid()):
                os.fchown(f.fileno(), *owner)  # before the mode: a change of owner clears set-id bits
            os.fchmod(f.fileno(), mode)
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def discard_leftovers(path) -> None:
    """Remove what a writer of `path` killed between stage and put_in_place left beside it.
    Only for a caller that holds the lock every writer of `path` takes: another writer's
    staged file would go too."""
    path = Path(path)
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


def put_in_place(staged) -> None:
    """Rename each staged file over its target [(staged, target)], then flush each directory once."""
    for tmp, target in staged:
        os.replace(tmp, target)
    for directory in {Path(target).parent for _tmp, target in staged}:
        _fsync_directory(directory)


def _fsync_directory(directory) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def file_lock(path, mode: int = 0o600):
    """Hold an exclusive lock on the file `path` (created with `mode` if missing) for the block.
    Waits for any other holder, in this process or another."""
    # Not truncated and no symbolic link followed: a link planted at the name cannot make the
    # panel open, let alone empty, another file.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
