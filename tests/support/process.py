"""Child processes with their own process group and a log file each."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable


class HarnessError(RuntimeError):
    """A component of the test stack failed to start or misbehaved."""


def tail(path: Path, lines: int = 80) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:])


def dump_logs(paths, lines: int = 80) -> str:
    """The last `lines` lines of each log file, with a header each."""
    return "\n".join(f"----- {p} (last {lines} lines) -----\n{tail(p, lines)}" for p in paths)


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    description: str,
    interval: float = 0.05,
    processes: tuple["ManagedProcess", ...] = (),
):
    """Poll `predicate` until it returns something truthy; return that value.

    Fails early (with the process's log) if one of `processes` exits meanwhile.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - polled until the deadline
            last_error = exc
        for proc in processes:
            if not proc.alive:
                raise HarnessError(
                    f"{proc.name} exited with status {proc.returncode} while waiting for {description}\n"
                    f"--- {proc.log_path} ---\n{tail(proc.log_path)}"
                )
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            logs = "".join(f"\n--- {p.log_path} ---\n{tail(p.log_path)}" for p in processes)
            raise HarnessError(f"timed out after {timeout}s waiting for {description}{detail}{logs}")
        time.sleep(interval)


class ManagedProcess:
    """One child process in its own session, output (stdout+stderr) appended to `log_path`."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict | None = None, cwd: Path | None = None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self._log_start = 0

    def start(self) -> "ManagedProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._log_start = log.tell()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # own process group: signals reach every child
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Send `sig` to the whole process group and wait for the leader to exit."""
        self.signal_group(sig)
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(5)
        self.signal_group(signal.SIGKILL)  # leftovers of the group, if any

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """Graceful stop (SIGTERM to the group), SIGKILL after `timeout`. Idempotent."""
        if self.proc is None:
            return
        if self.alive:
            self.kill(sig, timeout)
        else:
            self.signal_group(signal.SIGKILL)

    def log_text(self, since_start: bool = True) -> str:
        try:
            with open(self.log_path, "rb") as f:
                if since_start:
                    f.seek(self._log_start)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match:
        """Wait until this run's log matches the regular expression `pattern`."""
        regex = re.compile(pattern, re.MULTILINE)
        return wait_until(
            lambda: regex.search(self.log_text()), timeout, f"{self.name} to log {pattern!r}", interval=0.1, processes=(self,)
        )

    def __repr__(self):
        return f"<ManagedProcess {self.name} pid={self.pid} alive={self.alive}>"


def stop_all(processes, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stop several processes at once: `sig` to every group, then SIGKILL what is left after `timeout`."""
    processes = [p for p in processes if p is not None and p.proc is not None]
    for proc in processes:
        if proc.alive:
            proc.signal_group(sig)
    deadline = time.monotonic() + timeout
    for proc in processes:
        try:
            proc.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.signal_group(signal.SIGKILL)
            proc.proc.wait(5)
    for proc in processes:
        proc.signal_group(signal.SIGKILL)  # leftovers of each group, if any
