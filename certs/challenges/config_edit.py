"""Temporary edits to a web server's own config files, undone byte for byte.

The nginx and Apache modes answer HTTP-01 through a server the panel does not manage, with
one skeleton (ServerMode): put the answers in a directory of the panel's, insert ONE include
line into each server block that serves a name, test the config, reload, and wait until the
answers are served; anything that fails half-way is undone before ServerConfigError. What
was changed is kept in a JSON-serialisable state, so any worker can restore it: each edited
file's original bytes, mode and owner, and the bytes it was given. A mode says only where
its include line goes, what it includes, and how its server tests and reloads.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from certs.challenges import external
from panel.toolkit.files import write_atomic

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_KEY_AUTHORIZATION = re.compile(r"^[A-Za-z0-9_-]{1,256}\.[A-Za-z0-9_-]{1,256}$")
SELF_CHECK_SECONDS = 10.0  # how long a reload may take before the new answer is served
SELF_CHECK_AGENT = "CertPanel self-check"  # how the server's access log names our own requests


class ServerConfigError(external.PresentationError):
    """The server's config could not be used or changed; the message says why, for a person."""


@dataclass
class Placement:
    """Where a mode's include line goes, and where the answers are then checked."""

    edits: dict[Path, tuple[bytes, list[int]]]  # file -> (its bytes as read, offsets to insert at)
    checks: list[tuple[str, list]]  # (address to connect to, the answers served there)
    state: dict = field(default_factory=dict)  # what the mode's test and reload need besides the config path


class ServerMode:
    """The mode contract of certs/challenges/external.py for a web server's own config."""

    def place(self, config_path: Path, answers, port: int) -> Placement:
        """Find the blocks serving each name on `port`; raise ServerConfigError if a name has none."""
        raise NotImplementedError

    def write_answers(self, work_dir: Path, answers) -> bytes:
        """Write what the include line includes into `work_dir`; return the include line."""
        raise NotImplementedError

    def test(self, state: dict, restored: bool) -> None:
        """Have the server check its whole config; raise ServerConfigError if it refuses it."""
        raise NotImplementedError

    def reload(self, state: dict) -> None:
        """Have the server use its config as it is now; raise ServerConfigError if it cannot."""
        raise NotImplementedError

    def present_in_config(self, config_path, names_tokens, port: int = 80, work_root=None) -> dict:
        answers = _check_answers(names_tokens)
        config_path = Path(config_path)
        placement = self.place(config_path, answers, port)
        work_dir = _make_work_dir(work_root)
        state = {"config": str(config_path), "work_dir": str(work_dir), "files": [], **placement.state}
        try:
            include = self.write_answers(work_dir, answers)
            for path, (expected, offsets) in placement.edits.items():
                _insert_lines(state, path, [(offset, include) for offset in offsets], expected)
            self.test(state, restored=False)
            self.reload(state)
            for address, served in placement.checks:
                _wait_until_served(address, port, served)
        except BaseException:
            self.restore(state)
            raise
        return state

    def restore(self, state: dict) -> None:
        problems = _restore_files(state)
        if state["files"]:
            self.test(state, restored=True)
            self.reload(state)
        if problems:
            raise ServerConfigError("; ".join(problems))

    def present(self, certificate, presentations) -> dict:
        return self.present_in_config(_server_config_of(certificate), _answers_of(presentations),
                                      port=settings.EXTERNAL_HTTP_PORT)

    def cleanup(self, certificate, state: dict) -> None:
        self.restore(state)


def _server_config_of(certificate) -> Path:
    """The certificate's server config, checked again: the allowed roots may have changed since the request."""
    try:
        return Path(external.validate_server_config(certificate.server_config))
    except ValidationError as exc:
        raise ServerConfigError(f"{certificate.server_config}: {' '.join(exc.messages)}")


def _answers_of(presentations) -> list[tuple[str, str, str]]:
    return [(p.name, p.token, p.key_authorization) for p in presentations]


def _check_answers(names_tokens) -> list[tuple[str, str, str]]:
    """(name, token, key authorization) triples, refused unless every part is plain ACME text.

    They end up inside the server's config, so nothing else may get through.
    """
    answers = [(name.lower().rstrip("."), token, key) for name, token, key in names_tokens]
    for name, token, key in answers:
        if not _TOKEN.match(token) or not _KEY_AUTHORIZATION.match(key) or key.split(".")[0] != token:
            raise ServerConfigError(f"{name}: refusing an HTTP-01 answer that is not base64url")
    if not answers:
        raise ServerConfigError("no names to validate")
    return answers


def _make_work_dir(work_root: Path | None) -> Path:
    """A fresh directory for this presentation's snippet and files, readable by the server's workers."""
    root = Path(work_root or settings.EXTERNAL_CHALLENGE_DIR)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    work_dir = Path(tempfile.mkdtemp(prefix="present-", dir=root))
    os.chmod(work_dir, 0o755)
    return work_dir


def write_public(path: Path, text: str) -> None:
    """A file in the work directory, readable by the server's workers."""
    write_atomic(path, text, mode=0o644)


def _insert_lines(state: dict, path: Path, insertions: list[tuple[int, bytes]], expected: bytes) -> None:
    """Insert `insertions` [(offset, bytes)] into `path`, whose current bytes must be `expected`.

    The original is recorded in `state` before the file is touched, so a failure from here on
    can always be undone.
    """
    path = Path(os.path.realpath(path))  # edit the file a symlink (sites-enabled/...) points to
    original = path.read_bytes()
    if original != expected:
        raise ServerConfigError(f"{path} changed while it was being read; try again")
    edited = original
    for offset, text in sorted(insertions, reverse=True):
        edited = edited[:offset] + text + edited[offset:]
    st = path.stat()
    state["files"].append({
        "path": str(path),
        "mode": st.st_mode & 0o7777,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "original": base64.b64encode(original).decode(),
        "edited_sha256": hashlib.sha256(edited).hexdigest(),
    })
    write_atomic(path, edited, st.st_mode & 0o7777, owner=(st.st_uid, st.st_gid))


def _restore_files(state: dict) -> list[str]:
    """Put every edited file back as it was and remove the work directory.

    A file somebody changed meanwhile is left alone (their change wins) and reported.
    """
    problems = []
    for entry in reversed(state.get("files", [])):
        path = Path(entry["path"])
        original = base64.b64decode(entry["original"])
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = None
        if current == original:
            continue
        if current is None or hashlib.sha256(current).hexdigest() != entry["edited_sha256"]:
            problems.append(f"{path} was changed by someone else meanwhile; remove the CertPanel include line by hand")
            continue
        write_atomic(path, original, entry["mode"], owner=(entry["uid"], entry["gid"]))
    shutil.rmtree(state.get("work_dir", ""), ignore_errors=True)
    return problems


def _wait_until_served(address: str, port: int, answers) -> None:
    """Poll the server until it answers every token with its key authorization (a reload is asynchronous)."""
    deadline = time.monotonic() + SELF_CHECK_SECONDS
    pending = list(answers)
    last = ""
    while pending:
        name, token, key = pending[0]
        try:
            status, body = http_get(address, port, name, f"/.well-known/acme-challenge/{token}")
            if status == 200 and body.strip() == key:
                pending.pop(0)
                continue
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise ServerConfigError(
                f"{name}: the server did not serve the challenge at {address}:{port} after reloading ({last})"
            )
        time.sleep(0.05)


def http_get(address: str, port: int, host: str, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection(address, port, timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host, "User-Agent": SELF_CHECK_AGENT})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()
