"""The real certbot (the venv's, from requirements-dev.txt) writing a config dir against a Pebble.

Run offline like bench/issue_latency: --server is Pebble's directory, REQUESTS_CA_BUNDLE
trusts Pebble's listener, and the config, work and logs dirs are under `tmp_dir`, so
nothing touches /etc/letsencrypt. Each run's output is appended to `<tmp_dir>/certbot.log`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .panel import REPO_ROOT
from .pebble import Pebble
from .process import HarnessError, dump_logs

CERTBOT_BIN = str(REPO_ROOT / ".venv" / "bin" / "certbot") if (REPO_ROOT / ".venv" / "bin" / "certbot").exists() \
    else (shutil.which("certbot") or "certbot")
RUN_TIMEOUT = 120


class Certbot:
    """certbot with its directories under `tmp_dir`: `.config_dir` is what an import reads."""

    def __init__(self, tmp_dir, pebble: Pebble, email: str = "ops@example.test"):
        self.tmp_dir = Path(tmp_dir)
        self.pebble = pebble
        self.email = email
        self.config_dir = self.tmp_dir / "config"
        self.work_dir = self.tmp_dir / "work"
        self.logs_dir = self.tmp_dir / "logs"
        self.log_path = self.tmp_dir / "certbot.log"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "REQUESTS_CA_BUNDLE": str(self.pebble.ca_bundle_path)}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """`certbot ARGS` with the common options; raises HarnessError with its output if it fails."""
        for d in (self.config_dir, self.work_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        argv = [CERTBOT_BIN, *args, "--server", self.pebble.directory_url, "--non-interactive",
                "--config-dir", str(self.config_dir), "--work-dir", str(self.work_dir),
                "--logs-dir", str(self.logs_dir)]
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                                stdin=subprocess.DEVNULL, check=False)
        with open(self.log_path, "a") as log:
            log.write(f"=== {' '.join(argv)}\n--- exit {result.returncode}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            raise HarnessError(f"certbot exited with {result.returncode}: {' '.join(args)}\n"
                               f"{(result.stdout + result.stderr)[-3000:]}")
        return result

    def register(self) -> None:
        self.run("register", "--agree-tos", "-m", self.email, "--no-eff-email")

    def certonly_webroot(self, name: str, domains: list[str], webroot, *extra: str) -> Path:
        """Issue lineage `name` by webroot; returns its live/ directory."""
        names = [arg for domain in domains for arg in ("-d", domain)]
        self.run("certonly", "--webroot", "-w", str(webroot), *names, "--cert-name", name,
                 "--agree-tos", "-m", self.email, "--no-eff-email", "--no-random-sleep-on-renew", *extra)
        live = self.config_dir / "live" / name
        if not (live / "fullchain.pem").is_file():
            raise HarnessError(f"certbot wrote no {live / 'fullchain.pem'}")
        return live

    def dump_logs(self, lines: int = 80) -> str:
        return dump_logs([self.log_path], lines)
