"""HTTP-01 through an Apache httpd 2.4 the panel does not manage (acme.sh --apache).

present_in_config(config_path, names_tokens, port=80) -> state
    `config_path`: that Apache's main config file (Debian: /etc/apache2/apache2.conf; its
    directory's `envvars` is read, as apache2ctl does). `names_tokens`: (name, token, key
    authorization) triples. Finds the <VirtualHost> serving each name on the HTTP-01 port
    (from `apache2ctl -S`), inserts ONE IncludeOptional line after each one's opening line,
    puts the included Aliases + <Directory> and the token files in a directory of the panel's
    (it must be readable by Apache's user), runs `apache2ctl -t`, restarts gracefully and waits
    until the answers are served. Anything that fails half-way is undone before ServerConfigError.
    (presenting() is the same as a context manager, as in nginx_mode.)
restore(state)
    The include line removed from every edited file, the token directory removed, `apache2ctl -t`,
    graceful restart. Raises ServerConfigError if something could not be undone.

The flow is config_edit.ServerMode's, and so are present(certificate, presentations) and
cleanup(certificate, state), the mode contract of certs/challenges/external.py over these two
(on certificate.server_config and settings.EXTERNAL_HTTP_PORT): this module says only where
the include goes, what it includes, and how Apache tests and restarts.

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


class ApacheMode(config_edit.ServerMode):
    def place(self, config_path: Path, answers, port: int) -> config_edit.Placement:
        groups = _virtual_hosts(config_path, port)
        if not groups:
            raise ServerConfigError(f"no <VirtualHost> in {config_path} listens on port {port}")
        chosen = {}  # (file, line) -> (vhost, address, answers it serves)
        for answer in answers:
            for address, vhosts in groups.items():
                vhost = _match(answer[0], vhosts)
                chosen.setdefault(vhost.key, (vhost, address, []))[2].append(answer)
        edits = {}
        for vhost, _, _ in chosen.values():
            if vhost.path not in edits:
                edits[vhost.path] = (Path(os.path.realpath(vhost.path)).read_bytes(), [])
            original, offsets = edits[vhost.path]
            offsets.append(_end_of_opening_line(original, vhost.path, vhost.line))
        return config_edit.Placement(edits, [(address, served) for _, address, served in chosen.values()])

    def include_line(self, snippet: Path) -> bytes:
        return f'IncludeOptional "{snippet}"\n'.encode()  # a missing file is skipped, not an error

    def write_answers(self, work_dir: Path, answers) -> None:
        answers_dir = work_dir / "acme-challenge"
        answers_dir.mkdir(mode=0o755)
        os.chmod(answers_dir, 0o755)
        for _, token, key in answers:
            config_edit.write_public(answers_dir / token, key)
        config_edit.write_public(work_dir / config_edit.SNIPPET, _snippet(answers_dir, answers))

    def test(self, state: dict, restored: bool) -> None:
        what = "apache2ctl -t rejected the restored config" if restored else "apache2ctl -t rejected the config"
        _ctl(Path(state["config"]), "-t", what=what)

    def reload(self, state: dict) -> None:
        _ctl(Path(state["config"]), "graceful", what="Apache could not restart gracefully")


_MODE = ApacheMode()
presenting, present_in_config, restore = _MODE.presenting, _MODE.present_in_config, _MODE.restore
present, cleanup = _MODE.present, _MODE.cleanup


def _snippet(answers_dir: Path, answers) -> str:
    # One Alias per token: another presentation's snippet in the same <VirtualHost> has its
    # own, and two Aliases of the whole directory would hide the second one's answers.
    aliases = "".join(f'Alias /.well-known/acme-challenge/{token} "{answers_dir}/{token}"\n'
                      for token in sorted({token for _, token, _ in answers}))
    return (
        "# CertPanel: ACME HTTP-01 answers, removed again once the CA has validated\n"
        f"{aliases}"
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
