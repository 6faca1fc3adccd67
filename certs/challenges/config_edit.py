"""Temporary edits to a web server's own config files, undone byte for byte.

The nginx and Apache modes answer HTTP-01 through a server the panel does not manage, with
one skeleton (ServerMode): put the answers in a directory of the panel's, insert ONE include
line into each server block that serves a name, test the config, reload, and wait until the
answers are served; anything that fails half-way is undone before ServerConfigError. What
was changed is kept in a JSON-serialisable state, so any worker can restore it: the files
edited and the include line inserted into them, which is all that is removed again (a change
someone else made to those files meanwhile stays). A mode says only where its include line
goes, what it includes, and how its server tests and reloads.

Presentations and clean-ups on one server config take turns (a lock keyed on the config's
resolved path), from the first edit through the test, the reload and the caller storing the
state. Each presentation writes its state to a journal beside its directory before it edits
anything, and removes the journal once the caller has stored the state. So a journal found
by whoever holds the lock next belongs to a worker killed in between: nobody else will ever
undo that presentation, and the holder undoes it first. That is simpler than marking lines
with owners and asking which owners are alive: under the lock, no other presentation can be
in the middle of its work.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from certs.challenges import external
from panel.toolkit.files import discard_leftovers, file_lock, write_atomic

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_KEY_AUTHORIZATION = re.compile(r"^[A-Za-z0-9_-]{1,256}\.[A-Za-z0-9_-]{1,256}$")
SELF_CHECK_SECONDS = 10.0  # how long a reload may take before the new answer is served
SELF_CHECK_AGENT = "CertPanel self-check"  # how the server's access log names our own requests
SNIPPET = "acme-challenge.conf"  # what the include line includes, in the presentation's directory


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

    def include_line(self, snippet: Path) -> bytes:
        """The line inserted into each serving block. It must not fail the server's config
        test when `snippet` is missing (someone may remove the panel's directory)."""
        raise NotImplementedError

    def write_answers(self, work_dir: Path, answers) -> None:
        """Write the snippet (work_dir / SNIPPET) and whatever it needs into `work_dir`."""
        raise NotImplementedError

    def test(self, state: dict, restored: bool) -> None:
        """Have the server check its whole config; raise ServerConfigError if it refuses it."""
        raise NotImplementedError

    def reload(self, state: dict) -> None:
        """Have the server use its config as it is now; raise ServerConfigError if it cannot."""
        raise NotImplementedError

    @contextmanager
    def presenting(self, config_path, names_tokens, port: int = 80, work_root=None):
        """Present, and yield the state for the caller to store inside the block; the config
        stays locked until then. If the block raises, the presentation is undone."""
        answers = _check_answers(names_tokens)
        config_path = Path(config_path)
        config_dir = _config_dir(Path(work_root or settings.EXTERNAL_CHALLENGE_DIR), config_path)
        with file_lock(config_dir / "lock"):
            self._undo_unstored(config_dir)
            placement = self.place(config_path, answers, port)
            name = f"present-{secrets.token_hex(8)}"
            work_dir, journal = config_dir / name, config_dir / f"{name}.json"
            state = {
                "config": str(config_path),
                "work_dir": str(work_dir),
                "include": self.include_line(work_dir / SNIPPET).decode(),
                "files": sorted({os.path.realpath(path) for path in placement.edits}),  # the file a symlink points to
                **placement.state,
            }
            write_atomic(journal, json.dumps(state), mode=0o600)
            try:
                work_dir.mkdir()
                os.chmod(work_dir, 0o755)  # readable by the server's workers whatever the worker's umask
                self.write_answers(work_dir, answers)
                for path, (expected, offsets) in placement.edits.items():
                    _insert(Path(os.path.realpath(path)), state["include"].encode(), offsets, expected)
                self.test(state, restored=False)
                self.reload(state)
                for address, served in placement.checks:
                    _wait_until_served(address, port, served)
                yield state
            except BaseException:
                self._undo(state)
                journal.unlink()
                raise
            # Stored by the caller: from now on its clean-up undoes this. (Killed just before
            # this line, the next holder undoes a stored presentation: the CA's validation
            # fails and the order says so; never an edit that nobody will remove.)
            journal.unlink()

    def present_in_config(self, config_path, names_tokens, port: int = 80, work_root=None) -> dict:
        """presenting(), for a caller that keeps the state it returns (tests, a shell)."""
        with self.presenting(config_path, names_tokens, port, work_root) as state:
            return state

    def restore(self, state: dict) -> None:
        """Undo the presentation `state` records, under its config's lock."""
        if "include" not in state:  # stored before clean-ups removed only their own line
            raise ServerConfigError(f"{state['config']}: presented by an earlier CertPanel version; remove its "
                                    f"include line of {state['work_dir']} by hand")
        config_dir = Path(state["work_dir"]).parent
        with file_lock(config_dir / "lock"):
            self._undo_unstored(config_dir)
            self._undo(state)

    def present(self, certificate, presentations):
        return self.presenting(_server_config_of(certificate), _answers_of(presentations),
                               port=settings.EXTERNAL_HTTP_PORT)

    def cleanup(self, certificate, state: dict) -> None:
        self.restore(state)

    def _undo(self, state: dict) -> None:
        """Remove the include line from every file, then the directory, then test and reload.
        Safe to run twice and after a partial run; a journal stays until this succeeded."""
        changed = False
        for path in state["files"]:
            discard_leftovers(path)  # a write_atomic killed half-way
            changed |= _remove(Path(path), state["include"].encode())
        shutil.rmtree(state["work_dir"], ignore_errors=True)
        if changed:
            self.test(state, restored=True)
            self.reload(state)

    def _undo_unstored(self, config_dir: Path) -> None:
        """Undo what workers killed between presenting and storing left on this config. Only
        under the config's lock: then no journal belongs to a presentation still at work."""
        for leftover in config_dir.glob(".present-*.tmp"):  # a journal's write killed half-way
            leftover.unlink()
        for journal in sorted(config_dir.glob("present-*.json")):
            self._undo(json.loads(journal.read_text()))
            journal.unlink()


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


def _config_dir(work_root: Path, config_path: Path) -> Path:
    """The directory of one server config's presentations and of its lock: one per resolved
    path, so two names for one file (a symlink) share the lock. Readable by the server's workers."""
    key = hashlib.sha256(os.path.realpath(config_path).encode()).hexdigest()[:16]
    directory = work_root / f"config-{key}"
    for path in (work_root, directory):
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o755)
    return directory


def write_public(path: Path, text: str) -> None:
    """A file in the work directory, readable by the server's workers."""
    write_atomic(path, text, mode=0o644)


def _insert(path: Path, include: bytes, offsets: list[int], expected: bytes) -> None:
    """Insert `include` at each of `offsets` into `path`, whose current bytes must be `expected`."""
    original = path.read_bytes()
    if original != expected:
        raise ServerConfigError(f"{path} changed while it was being read; try again")
    edited = original
    for offset in sorted(offsets, reverse=True):
        edited = edited[:offset] + include + edited[offset:]
    _write_keeping_mode_and_owner(path, edited)


def _remove(path: Path, include: bytes) -> bool:
    """Remove every copy of `include` from `path`; whether there was one. The line names this
    presentation's own directory, so it is nobody else's."""
    try:
        current = path.read_bytes()
    except FileNotFoundError:
        return False
    if include not in current:
        return False
    _write_keeping_mode_and_owner(path, current.replace(include, b""))
    return True


def _write_keeping_mode_and_owner(path: Path, data: bytes) -> None:
    st = path.stat()
    write_atomic(path, data, st.st_mode & 0o7777, owner=(st.st_uid, st.st_gid))


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
