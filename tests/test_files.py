"""panel.toolkit.files: a write is all or nothing, lands with the mode asked for, cannot be
redirected by a planted link, and the lock lets one holder in at a time."""

import os
import stat
import subprocess
import sys
import tempfile
import threading

import pytest

from panel.toolkit import files


def mode(path):
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def umask():
    """Set a umask for the test, and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("asked, process_umask", [(0o600, 0o000), (0o644, 0o077), (0o640, 0o022)])
def test_the_file_gets_the_mode_asked_for_whatever_the_umask(tmp_path, umask, asked, process_umask):
    umask(process_umask)
    target = tmp_path / "privkey.pem"
    files.write_atomic(target, "secret\n", mode=asked)
    assert target.read_text() == "secret\n"
    assert mode(target) == asked


def test_it_replaces_the_previous_content_with_text_or_bytes(tmp_path):
    target = tmp_path / "site.conf"
    target.write_text("old")
    os.chmod(target, 0o600)
    files.write_atomic(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓" and mode(target) == 0o644
    files.write_atomic(target, b"\x00raw", mode=0o600)
    assert target.read_bytes() == b"\x00raw" and mode(target) == 0o600
    assert os.listdir(tmp_path) == ["site.conf"]


def test_a_failure_mid_write_leaves_the_previous_content_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "fullchain.pem"
    target.write_text("the certificate nginx serves now")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        files.write_atomic(target, "a new certificate")
    assert target.read_text() == "the certificate nginx serves now"
    assert os.listdir(tmp_path) == ["fullchain.pem"]


def test_a_failure_to_rename_leaves_no_temporary_file(tmp_path):
    (tmp_path / "taken").mkdir()  # a directory where the file should go: the rename fails
    with pytest.raises(IsADirectoryError):
        files.write_atomic(tmp_path / "taken", "text")
    assert os.listdir(tmp_path) == ["taken"]
    assert os.listdir(tmp_path / "taken") == []


def test_a_link_planted_at_the_temporary_name_cannot_redirect_the_write(tmp_path, monkeypatch):
    # Someone who can write in the directory guesses the next temporary name and puts a link
    # there to a file of the panel's: the write must not go through it.
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    directory = tmp_path / "webroot"
    directory.mkdir()
    (directory / ".token.guessed.tmp").symlink_to(victim)
    names = iter(["guessed", "fresh"])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)

    files.write_atomic(directory / "token", "token.thumbprint")

    assert victim.read_text() == "keep me"
    assert (directory / "token").read_text() == "token.thumbprint"
    assert not (directory / "token").is_symlink()


def test_a_link_at_the_target_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "token").symlink_to(victim)
    files.write_atomic(tmp_path / "token", "token.thumbprint")
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "token").is_symlink() and (tmp_path / "token").read_text() == "token.thumbprint"


def test_staged_files_change_nothing_until_they_are_put_in_place_together(tmp_path):
    key, chain = tmp_path / "privkey.pem", tmp_path / "fullchain.pem"
    key.write_text("old key")
    chain.write_text("old chain")
    staged = [(files.stage(key, "new key", 0o600), key), (files.stage(chain, "new chain", 0o644), chain)]
    assert (key.read_text(), chain.read_text()) == ("old key", "old chain")
    files.put_in_place(staged)
    assert (key.read_text(), mode(key), chain.read_text(), mode(chain)) == ("new key", 0o600, "new chain", 0o644)
    assert sorted(os.listdir(tmp_path)) == ["fullchain.pem", "privkey.pem"]


def test_write_new_creates_the_file_once_and_keeps_the_first_content(tmp_path):
    secret = tmp_path / "secret_key"
    assert files.write_new(secret, "first\n") is True
    assert files.write_new(secret, "second\n") is False
    assert secret.read_text() == "first\n" and mode(secret) == 0o600
    assert os.listdir(tmp_path) == ["secret_key"]


def test_the_lock_keeps_a_second_holder_waiting_until_the_first_lets_go(tmp_path):
    lock = tmp_path / "apply.lock"
    taken = threading.Event()

    def second_holder():
        with files.file_lock(lock):
            taken.set()

    with files.file_lock(lock):
        waiting = threading.Thread(target=second_holder)
        waiting.start()
        assert not taken.wait(0.3)
    assert taken.wait(5)
    waiting.join(5)


def try_lock_in_another_process(lock) -> str:
    probe = ("import fcntl, os, sys\n"
             "fd = os.open(sys.argv[1], os.O_RDWR)\n"
             "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    print('busy')\n"
             "else:\n    print('got it')\n")
    return subprocess.run([sys.executable, "-c", probe, str(lock)], capture_output=True, text=True,
                          timeout=30, check=True).stdout.strip()


def test_the_lock_excludes_another_process(tmp_path):
    lock = tmp_path / "target-1.lock"
    with files.file_lock(lock):
        assert try_lock_in_another_process(lock) == "busy"
    assert try_lock_in_another_process(lock) == "got it"


def test_the_lock_file_is_private_and_a_link_at_its_name_is_refused(tmp_path, umask):
    umask(0o000)
    with files.file_lock(tmp_path / "mine.lock"):
        pass
    assert mode(tmp_path / "mine.lock") == 0o600
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "planted.lock").symlink_to(victim)
    with pytest.raises(OSError):
        with files.file_lock(tmp_path / "planted.lock"):
            pass
    assert victim.read_text() == "keep me"


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    lock = tmp_path / "apply.lock"
    with pytest.raises(RuntimeError):
        with files.file_lock(lock):
            raise RuntimeError("apply failed")
    assert try_lock_in_another_process(lock) == "got it"


def test_what_a_killed_writer_left_is_discarded_and_nothing_else(tmp_path):
    target = tmp_path / "privkey.pem"
    leftover = files.stage(target, "half a key", 0o600)  # staged, then the writer died
    other = files.stage(tmp_path / "fullchain.pem", "another file's", 0o644)
    files.discard_leftovers(target)
    assert not leftover.exists() and other.exists()
