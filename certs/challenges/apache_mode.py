"""HTTP-01 through an Apache httpd 2.4 the panel does not manage (acme.sh --apache).

present_in_config(config_path, names_tokens, port=80) -> state
    `config_path`: that Apache's main config file (Debian: /etc/apache2/apache2.conf; its
    directory's `envvars` is read, as apache2ctl does). `names_tokens`: (name, token, key
    authorization) triples. Finds the <VirtualHost> serving each name on the HTTP-01 port
    (from `apache2ctl -S`), inserts ONE Include line after each one's opening line, puts the
    included Alias + <Directory> and the token files in a directory of the panel's (it must be
    readable by Apache's user), runs `apache2ctl -t`, restarts gracefully and waits until the
    answers are served. Anything that fails half-way is undone before ServerConfigError.
restore(state)
    Every edited file back byte for byte, the token directory removed, `apache2ctl -t`,
    graceful restart. Raises ServerConfigError if something could not be undone.

present(certificate, presentations) / cleanup(certificate, state) are the mode contract of
certs/challenges/external.py over these two: certificate.server_config (checked again against
the allowed roots) and settings.EXTERNAL_HTTP_PORT. ServerConfigError is a PresentationError.

Which virtual host serves a name follows Apache's rules, per address: the first (in config
order) whose ServerName or a ServerAlias (with * and ?) matches, else the first one there.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from certs.challenges import config_edit
from certs.challenges.config_edit import ServerConfigError

APACHE_CTL = "apache2ctl"
_NAME_BASED = re.compile(r"^(\S+):(\d+)\s+is a NameVirtualHost$")
_NAMED_VHOST = re.compile(r"^\s+port (\d+) namevhost (\S+) \((.+):(\d+)\)$")
_ALIAS = re.compile(r"^\s+(?:wild )?alias (\S+)$")
_ONLY_VHOST = re.compile(r"^(\S+):(\d+)\s+(\S+) \((.+):(\d+)\)$")


@dataclass
class VirtualHost:
    path: Path
    line: int
    names: list[str] = field(default_factory=list)

    @property
    def key(self):
        return (self.path, self.line)


def present_in_config(config_path, names_tokens, port: int = 80, work_root=None) -> dict:
    answers = config_edit.check_answers(names_tokens)
    config_path = Path(config_path)
    groups = _virtual_hosts(config_path, port)
    if not groups:
        raise ServerConfigError(f"no <VirtualHost> in {config_path} listens on port {port}")
    chosen = {}  # (file, line) -> (vhost, address, answers it serves)
    for answer in answers:
        for address, vhosts in groups.items():
            vhost = _match(answer[0], vhosts)
            chosen.setdefault(vhost.key, (vhost, address, []))[2].append(answer)

    work_dir = config_edit.make_work_dir(work_root)
    state = config_edit.new_state(config_path, work_dir)
    try:
        answers_dir = work_dir / "acme-challenge"
        answers_dir.mkdir(mode=0o755)
        os.chmod(answers_dir, 0o755)
        for _, token, key in answers:
            config_edit.write_public(answers_dir / token, key)
        snippet = work_dir / "acme-challenge.conf"
        config_edit.write_public(snippet, _snippet(answers_dir))
        by_file = {}
        for vhost, _, _ in chosen.values():
            by_file.setdefault(vhost.path, []).append(vhost.line)
        for path, lines in by_file.items():
            original = Path(os.path.realpath(path)).read_bytes()
            insertions = [(_end_of_opening_line(original, path, line), f'Include "{snippet}"\n'.encode())
                          for line in lines]
            config_edit.insert_lines(state, path, insertions, original)
        _ctl(config_path, "-t", what="apache2ctl -t rejected the config")
        _ctl(config_path, "graceful", what="Apache could not restart gracefully")
        for _, address, served in chosen.values():
            config_edit.wait_until_served(address, port, served)
    except BaseException:
        restore(state)
        raise
    return state


def restore(state: dict) -> None:
    problems = config_edit.restore_files(state)
    config_path = Path(state["config"])
    if state["files"]:
        _ctl(config_path, "-t", what="apache2ctl -t rejected the restored config")
        _ctl(config_path, "graceful", what="Apache could not restart gracefully")
    if problems:
        raise ServerConfigError("; ".join(problems))


def present(certificate, presentations) -> dict:
    """The mode contract (certs/challenges/external.py) on the certificate's server config."""
    return present_in_config(config_edit.server_config_of(certificate), config_edit.answers_of(presentations),
                             port=settings.EXTERNAL_HTTP_PORT)


def cleanup(certificate, state: dict) -> None:
    restore(state)


def _snippet(answers_dir: Path) -> str:
    return (
        "# CertPanel: ACME HTTP-01 answers, removed again once the CA has validated\n"
        f'Alias /.well-known/acme-challenge/ "{answers_dir}/"\n'
        f'<Directory "{answers_dir}">\n'
        "    Require all granted\n"
        "    ForceType text/plain\n"
        "</Directory>\n"
    )


def _end_of_opening_line(data: bytes, path: Path, line: int) -> int:
    lines = data.splitlines(keepends=True)
    if not 0 < line <= len(lines) or not lines[line - 1].lstrip().lower().startswith(b"<virtualhost"):
        raise ServerConfigError(f"{path}:{line}: expected the <VirtualHost> line Apache reported there")
    return sum(len(text) for text in lines[:line])


def _ctl(config_path: Path, *args: str, what: str) -> subprocess.CompletedProcess:
    if any(c.isspace() for c in str(config_path)):  # apache2ctl splits APACHE_ARGUMENTS on spaces
        raise ServerConfigError(f"{config_path}: a config path with spaces is not supported")
    environment = {
        **os.environ,
        "APACHE_CONFDIR": str(config_path.parent),  # where apache2ctl reads envvars from
        "APACHE_ARGUMENTS": f"-f {config_path}",
    }
    result = subprocess.run([APACHE_CTL, *args], capture_output=True, env=environment, timeout=60)
    if result.returncode != 0:
        output = (result.stderr + result.stdout).decode(errors="replace").strip()
        raise ServerConfigError(f"{what}: {output}")
    return result


def _virtual_hosts(config_path: Path, port: int) -> dict[str, list[VirtualHost]]:
    """Address to connect to -> the <VirtualHost>s there on `port`, in Apache's order."""
    output = _ctl(config_path, "-S", what="apache2ctl -S failed").stdout.decode(errors="replace")
    groups: dict[str, list[VirtualHost]] = {}
    current: list[VirtualHost] | None = None
    for line in output.splitlines():
        if m := _NAME_BASED.match(line):
            current = groups.setdefault(_connect_address(m[1]), []) if int(m[2]) == port else None
        elif (m := _NAMED_VHOST.match(line)) and current is not None:
            current.append(VirtualHost(Path(m[3]), int(m[4]), [m[2].lower()]))
        elif (m := _ALIAS.match(line)) and current:
            current[-1].names.append(m[1].lower())
        elif m := _ONLY_VHOST.match(line):
            current = None
            if int(m[2]) == port:
                groups.setdefault(_connect_address(m[1]), []).append(VirtualHost(Path(m[4]), int(m[5]), [m[3].lower()]))
    return groups


def _connect_address(address: str) -> str:
    return {"*": "127.0.0.1", "_default_": "127.0.0.1", "[::]": "::1"}.get(address, address.strip("[]"))


def _match(name: str, vhosts: list[VirtualHost]) -> VirtualHost:
    for vhost in vhosts:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in vhost.names):
            return vhost
    return vhosts[0]
