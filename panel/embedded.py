"""Running CertPanel's processes on one machine: the `runpanel` launcher and test harnesses.

No Django in here: a test harness can start a private Redis, wait for ports and
sockets, and supervise children with the same code the launcher uses.
"""

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

# sockaddr_un.sun_path is 108 bytes on Linux, the last one a NUL.
UNIX_SOCKET_PATH_MAX = 107


class StartupError(Exception):
    """A child did not come up; the message says which and why."""


def connect_host(host):
    """The address to connect to for a server bound to `host` (a wildcard means loopback)."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def port_answers(host, port, timeout=0.5):
    try:
        with socket.create_connection((connect_host(host), port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_answers(socket_path, timeout=0.5):
    """True if a Redis server answers PING on the unix socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def wait_until(ready, what, timeout=20.0, process=None):
    """Poll `ready()` until it is true. Raise StartupError on timeout or if `process` exits first."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if ready():
            return
        if process is not None and process.poll() is not None:
            raise StartupError(f"{what}: the process exited with code {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise StartupError(f"{what}: not ready after {timeout:g} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def wait_for_port(host, port, timeout=20.0, process=None):
    wait_until(lambda: port_answers(host, port), f"port {host}:{port}", timeout, process)


def _die_with_parent():
    """A preexec_fn: if the launcher dies, even by SIGKILL, the kernel sends the child SIGTERM."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    PR_SET_PDEATHSIG = 1
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def describe_exit(returncode):
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def _signal_session(process, signum):
    """Signal every process in the child's session (it leads one: start_new_session)."""
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class Supervisor:
    """Children started in order, watched together, stopped together.

    Each child runs in its own session, so a Ctrl-C in the terminal reaches only
    the launcher, which then stops the children in an order that lets them shut
    down cleanly: first everything else, then those started with `stop_last`
    (the Redis that Celery talks to while it shuts down).
    """

    # A child started with restart=True that exits is started again, up to this many times in
    # RESTART_WINDOW seconds; one more exit in that window ends the supervision like any other.
    MAX_RESTARTS = 5
    RESTART_WINDOW = 60.0

    def __init__(self, stop_timeout=15.0):
        self.stop_timeout = stop_timeout
        self.children = []  # (name, Popen, stop_last), in start order
        self._restartable = {}  # name -> (argv, popen kwargs, monotonic times of its restarts)

    def start(self, name, argv, stop_last=False, restart=False, **popen_kwargs):
        popen_kwargs.setdefault("start_new_session", True)
        if os.uname().sysname == "Linux":
            popen_kwargs.setdefault("preexec_fn", _die_with_parent())
        try:
            process = subprocess.Popen(argv, **popen_kwargs)
        except OSError as exc:
            raise StartupError(f"{name}: cannot run {argv[0]}: {exc.strerror}") from exc
        self.children.append((name, process, stop_last))
        if restart:
            self._restartable[name] = (argv, popen_kwargs, [])
        return process

    def exited(self):
        """(name, returncode) of the first child that has exited, or None."""
        for name, process, _ in self.children:
            if process.poll() is not None:
                return name, process.returncode
        return None

    def supervise(self, interval=0.2, on_restart=None):
        """Block until a child exits and is not restarted; return its (name, returncode).
        `on_restart(name, returncode)` is called before a child is started again."""
        while True:
            found = self.exited()
            if found and not self._restarted(*found, on_restart):
                return found
            time.sleep(interval)

    def _restarted(self, name, returncode, on_restart):
        if name not in self._restartable:
            return False
        argv, popen_kwargs, restarts = self._restartable[name]
        now = time.monotonic()
        restarts[:] = [at for at in restarts if now - at < self.RESTART_WINDOW]
        if len(restarts) >= self.MAX_RESTARTS:
            return False
        restarts.append(now)
        if on_restart is not None:
            on_restart(name, returncode)
        index = next(i for i, (child, _, _) in enumerate(self.children) if child == name)
        _signal_session(self.children[index][1], signal.SIGTERM)  # what it forked may live on
        try:
            process = subprocess.Popen(argv, **popen_kwargs)
        except OSError:
            return False
        self.children[index] = (name, process, self.children[index][2])
        return True

    def stop_all(self):
        """SIGTERM the children and wait; SIGKILL any still running after `stop_timeout`.

        Returns the names of the children that had to be killed.
        """
        killed = []
        for last in (False, True):
            group = [(name, process) for name, process, stop_last in self.children if stop_last == last]
            for _, process in group:
                if process.poll() is None:
                    process.terminate()
                else:
                    # It died on its own: its own children (gunicorn's workers, say) may live on.
                    _signal_session(process, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            for name, process in group:
                try:
                    process.wait(max(deadline - time.monotonic(), 0.01))
                except subprocess.TimeoutExpired:
                    # The whole session, so the workers the child forked go too.
                    _signal_session(process, signal.SIGKILL)
                    process.wait()
                    killed.append(name)
        return killed


def redis_socket_path(redis_url):
    """The socket path of a `unix://` Redis URL (query string ignored)."""
    if not redis_url.startswith("unix://"):
        raise ValueError(f"not a unix socket URL: {redis_url}")
    return Path(redis_url[len("unix://"):].split("?", 1)[0])


def start_private_redis(supervisor, socket_path, name="redis"):
    """Start a Redis that listens only on `socket_path` and keeps nothing on disk.

    Its working directory is the socket's directory (created 0700). Returns the
    Popen once Redis answers PING.
    """
    socket_path = Path(socket_path)
    if len(str(socket_path)) > UNIX_SOCKET_PATH_MAX:
        raise StartupError(
            f"{name}: the socket path {socket_path} is longer than {UNIX_SOCKET_PATH_MAX} bytes; "
            "use a shorter data directory or set REDIS_URL"
        )
    if redis_answers(socket_path):
        raise StartupError(
            f"{name}: a Redis already answers on {socket_path} (is another launcher using this data directory?)"
        )
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(socket_path.parent, 0o700)
    socket_path.unlink(missing_ok=True)  # left by a Redis that was killed
    argv = [
        "redis-server",
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(socket_path.parent),
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]
    process = supervisor.start(name, argv, stop_last=True)
    wait_until(lambda: redis_answers(socket_path), f"{name} on {socket_path}", process=process)
    return process
