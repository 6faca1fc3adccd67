"""HTTP-01 through an nginx the panel does not manage (acme.sh --nginx).

present_in_config(config_path, names_tokens, port=80) -> state
    `config_path`: that nginx's main config file. `names_tokens`: (name, token, key
    authorization) triples. Finds the server block(s) that serve each name on the HTTP-01
    port, inserts ONE include line into each, writes the included snippet into a directory
    of the panel's, runs `nginx -t`, reloads, and waits until the answers are served.
    Anything that fails half-way is undone before the ServerConfigError is raised.
    The returned state is JSON: store it, and pass it to restore() whatever happens.
    (presenting() is the same as a context manager, for a caller that stores the state
    while the config is still locked, as orders do.)
restore(state)
    Removes the include line from every edited file (mode and owner kept), removes the
    snippet, runs `nginx -t` and reloads. Raises ServerConfigError if something could not be undone.

The flow is config_edit.ServerMode's, and so are present(certificate, presentations) and
cleanup(certificate, state), the mode contract of certs/challenges/external.py over these two
(on certificate.server_config and settings.EXTERNAL_HTTP_PORT): this module says only where
the include goes, what it includes, and how nginx tests and reloads.

Which block serves a name follows nginx's own rules, per listening address: exact name,
longest leading wildcard, longest trailing wildcard, first matching regex, else the
address's default server.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from certs.challenges import config_edit
from certs.challenges.config_edit import ServerConfigError

_DUMPED_FILE = re.compile(rb"^# configuration file (.+):$", re.MULTILINE)


@dataclass
class Directive:
    name: str
    args: list[str]
    path: Path
    brace_end: int = -1  # offset just past the block's "{" in `path`; -1 for a simple directive
    children: list["Directive"] = field(default_factory=list)


class NginxMode(config_edit.ServerMode):
    def place(self, config_path: Path, answers, port: int) -> config_edit.Placement:
        files = _loaded_files(config_path)
        tree = _parse(config_path, files, config_path.parent)
        servers = _http_servers(tree)
        chosen = {}  # id(server) -> (server, listen address)
        for name, _, _ in answers:
            found = _servers_for(name, servers, port)
            if not found:
                raise ServerConfigError(f"{name}: no server block in {config_path} listens on port {port}")
            for server, address in found:
                chosen.setdefault(id(server), (server, address))
        edits = {}
        for server, _ in chosen.values():
            edits.setdefault(server.path, (files[server.path], []))[1].append(server.brace_end)
        checks = [(address, [a for a in answers if any(s is server for s, _ in _servers_for(a[0], servers, port))])
                  for server, address in chosen.values()]
        return config_edit.Placement(edits, checks, state={"pid_file": str(_pid_file(tree))})

    def include_line(self, snippet: Path) -> bytes:
        # A pattern ("...con[f]"): nginx skips a pattern that matches no file, where a plain
        # name that is missing would fail every `nginx -t` of this server.
        return f' include "{snippet.with_suffix(".con[f]")}";'.encode()

    def write_answers(self, work_dir: Path, answers) -> None:
        config_edit.write_public(work_dir / config_edit.SNIPPET, _snippet(answers))

    def test(self, state: dict, restored: bool) -> None:
        _test(Path(state["config"]))

    def reload(self, state: dict) -> None:
        _reload(Path(state["config"]), Path(state["pid_file"]))


_MODE = NginxMode()
presenting, present_in_config, restore = _MODE.presenting, _MODE.present_in_config, _MODE.restore
present, cleanup = _MODE.present, _MODE.cleanup


def _snippet(answers) -> str:
    # Server-level `if ... return`, not a location: a hand-written port-80 block often has a
    # server-level `return 301 https://...`, which runs before any location is chosen. Put
    # first in the block, these run before it.
    lines = ["# CertPanel: ACME HTTP-01 answers, removed again once the CA has validated"]
    for _, token, key in sorted({(None, t, k) for _, t, k in answers}, key=lambda a: a[1]):
        lines.append(f'if ($uri = "/.well-known/acme-challenge/{token}") {{ return 200 "{key}"; }}')
    return "\n".join(lines) + "\n"


# --- nginx itself


def _nginx(config_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([settings.NGINX_BIN, "-c", str(config_path), *args], capture_output=True, timeout=60)


def _loaded_files(config_path: Path) -> dict[Path, bytes]:
    """The files nginx reads for this config (from `nginx -T`), with their bytes on disk."""
    result = _nginx(config_path, "-T")
    if result.returncode != 0:
        raise ServerConfigError(f"nginx -T -c {config_path} failed: {result.stderr.decode(errors='replace').strip()}")
    paths = [Path(m.decode()) for m in _DUMPED_FILE.findall(result.stdout)]
    return {path: path.read_bytes() for path in paths}


def _test(config_path: Path) -> None:
    result = _nginx(config_path, "-t")
    if result.returncode != 0:
        raise ServerConfigError(f"nginx -t rejected the config: {result.stderr.decode(errors='replace').strip()}")


def _reload(config_path: Path, pid_file: Path) -> None:
    """Reload, and wait until the old workers stop taking connections: until then one of them
    may still answer a new request with the old config, even after a new worker has answered."""
    try:
        master = int(pid_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ServerConfigError(f"nginx for {config_path} does not seem to run: cannot read {pid_file} ({exc})")
    old_workers = _children(master)
    result = _nginx(config_path, "-s", "reload")
    if result.returncode != 0:
        raise ServerConfigError(f"nginx could not reload: {result.stderr.decode(errors='replace').strip()}")
    deadline = time.monotonic() + config_edit.SELF_CHECK_SECONDS
    while any(_accepts_connections(pid) for pid in old_workers):
        if time.monotonic() > deadline:
            raise ServerConfigError(f"nginx (pid {master}) did not retire its old workers after reloading")
        time.sleep(0.02)


def _pid_file(tree: list[Directive]) -> Path:
    """Where the master's pid is: the config's `pid`, else the one nginx was built with."""
    built = dict(re.findall(r"--(prefix|pid-path)=(\S+)", _nginx_build_options()))
    prefix = Path(built.get("prefix", "/usr/local/nginx"))
    configured = [d.args[0] for d in tree if d.name == "pid" and d.args]
    return prefix / (configured[-1] if configured else built.get("pid-path", "logs/nginx.pid"))


def _nginx_build_options() -> str:
    return subprocess.run([settings.NGINX_BIN, "-V"], capture_output=True, timeout=60).stderr.decode(errors="replace")


def _children(pid: int) -> set[int]:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        if parent == pid:
            children.add(int(stat.parent.name))
    return children


def _accepts_connections(pid: int) -> bool:
    """An old process still up and not yet "worker process is shutting down" (nginx's own title)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"worker process" in title and b"shutting down" not in title


# --- reading the config


def _tokens(text: str):
    """(kind, value, end offset): kind is "word", "{", "}" or ";"."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
        elif c in "{};":
            i += 1
            yield c, c, i
        elif c in "\"'":
            j, value = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                value.append(text[j])
                j += 1
            i = j + 1
            yield "word", "".join(value), i
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in ";{}":
                if text[j] == "\\":
                    j += 1
                elif text[j] == "$" and text[j + 1:j + 2] == "{":  # ${variable}
                    j = text.find("}", j)
                j += 1
            yield "word", text[i:j], j
            i = j


def _parse(path: Path, files: dict[Path, bytes], conf_prefix: Path) -> list[Directive]:
    text = files[path].decode("latin-1")  # one char per byte: offsets are byte offsets
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    for kind, value, end in _tokens(text):
        if kind == "word":
            words.append(value)
        elif kind == ";" and words:
            if words[0] == "include" and len(words) == 2:
                for included in _include(words[1], files, conf_prefix):
                    stack[-1].extend(_parse(included, files, conf_prefix))
            else:
                stack[-1].append(Directive(words[0], words[1:], path))
            words = []
        elif kind == "{" and words:
            block = Directive(words[0], words[1:], path, brace_end=end)
            stack[-1].append(block)
            stack.append(block.children)
            words = []
        elif kind == "}" and len(stack) > 1:
            stack.pop()
    return stack[0]


def _include(pattern: str, files: dict[Path, bytes], conf_prefix: Path) -> list[Path]:
    full = pattern if os.path.isabs(pattern) else str(conf_prefix / pattern)
    if glob.has_magic(full):
        return [Path(p) for p in sorted(glob.glob(full)) if Path(p) in files]
    return [Path(full)] if Path(full) in files else []


# --- which server serves a name


@dataclass
class _Listen:
    address: str  # where to connect to check the answer
    key: str  # the listening socket, as nginx groups servers by it
    default: bool


def _http_servers(tree: list[Directive]) -> list[Directive]:
    return [d for http in tree if http.name == "http" for d in http.children if d.name == "server" and d.brace_end >= 0]


def _listens(server: Directive, port: int) -> list[_Listen]:
    listens = [d.args for d in server.children if d.name == "listen" and d.args]
    if not listens:
        listens = [["80"]]  # nginx's default (when run as root, as a system nginx is)
    found = []
    for args in listens:
        where, flags = args[0], set(args[1:])
        if flags & {"ssl", "quic"} or where.startswith("unix:"):
            continue
        if where.isdigit():
            host, listen_port = "*", where
        elif where.startswith("["):
            host, _, listen_port = where[1:].partition("]:")
            host = f"[{host}]"
        else:
            host, _, listen_port = where.rpartition(":")
            if not listen_port.isdigit():  # "listen example.org;" means port 80
                host, listen_port = where, "80"
            host = host or "*"
        if int(listen_port) != port:
            continue
        connect = {"*": "127.0.0.1", "[::]": "::1"}.get(host, host.strip("[]"))
        found.append(_Listen(connect, f"{host}:{listen_port}", bool(flags & {"default_server", "default"})))
    return found


def _servers_for(name: str, servers: list[Directive], port: int) -> list[tuple[Directive, str]]:
    """The block serving `name` on `port`, for each address nginx listens on there."""
    groups: dict[str, list[tuple[Directive, _Listen]]] = {}
    for server in servers:
        for listen in _listens(server, port):
            groups.setdefault(listen.key, []).append((server, listen))
    found = []
    for members in groups.values():
        chosen = _match(name, [s for s, _ in members])
        if chosen is None:
            defaults = [(s, l) for s, l in members if l.default]
            chosen = (defaults or members)[0][0]
        address = next(l.address for s, l in members if s is chosen)
        found.append((chosen, address))
    return found


def _match(name: str, servers: list[Directive]) -> Directive | None:
    def names(server):
        # Regular expressions keep their case: lowering one could change what it matches.
        return [n if n.startswith("~") else n.lower()
                for d in server.children if d.name == "server_name" for n in d.args]

    exact = [s for s in servers if name in names(s)]
    if exact:
        return exact[0]
    best, best_length = None, 0
    for server in servers:  # "*.example.org" and ".example.org": the longest wins
        for pattern in names(server):
            if pattern.startswith("*.") and name.endswith(pattern[1:]) or (
                pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern))
            ):
                if len(pattern) > best_length:
                    best, best_length = server, len(pattern)
    if best:
        return best
    for server in servers:  # "mail.*"
        for pattern in names(server):
            if pattern.endswith(".*") and fnmatch.fnmatchcase(name, pattern) and len(pattern) > best_length:
                best, best_length = server, len(pattern)
    if best:
        return best
    for server in servers:
        for pattern in names(server):
            if pattern.startswith("~"):
                regex = re.sub(r"\(\?<(\w+)>", r"(?P<\1>", pattern[1:])  # PCRE named groups
                try:
                    if re.search(regex, name):
                        return server
                except re.error:
                    continue
    return None
