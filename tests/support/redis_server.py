"""A private redis-server on a free loopback port, no persistence."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from .ports import LOOPBACK, free_port
from .process import ManagedProcess, dump_logs, wait_until

REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, tmp_dir, port: int | None = None, start_timeout: float = 20.0):
        self.tmp_dir = Path(tmp_dir)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.process: ManagedProcess | None = None

    def url_for(self, db: int = 0) -> str:
        return f"redis://{LOOPBACK}:{self.port}/{db}"

    @property
    def url(self) -> str:
        return self.url_for(0)

    @property
    def log_paths(self) -> list[Path]:
        return [self.process.log_path] if self.process else []

    def dump_logs(self, lines: int = 80) -> str:
        return dump_logs(self.log_paths, lines)

    def command(self, *args: str) -> bytes:
        """Send one command (inline protocol) and return the raw first reply line."""
        with socket.create_connection((LOOPBACK, self.port), timeout=2) as s:
            s.sendall((" ".join(args) + "\r\n").encode())
            return s.makefile("rb").readline().rstrip(b"\r\n")

    def ping(self) -> bool:
        try:
            return self.command("PING") == b"+PONG"
        except OSError:
            return False

    def start(self) -> "RedisServer":
        self.process = ManagedProcess(
            "redis-server",
            [
                REDIS_BIN,
                "--port", str(self.port),
                "--bind", LOOPBACK,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.tmp_dir),
                "--daemonize", "no",
            ],
            self.tmp_dir / "redis.log",
            cwd=self.tmp_dir,
        ).start()
        try:
            wait_until(self.ping, self.start_timeout, "redis PING", processes=(self.process,))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
