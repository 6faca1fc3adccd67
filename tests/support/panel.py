"""The panel itself (migrate, private nginx, gunicorn, Celery worker) against a Pebble and a Redis.

Every process runs from the repository root with this interpreter (the venv's), in its
own process group, logging to `<tmp_dir>/logs/`. Nothing here imports Django: the
stack is driven over HTTP and through `manage.py` subprocesses.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

from .pebble import Pebble
from .ports import LOOPBACK, LOOPBACK6, free_port
from .postgres import DEFAULT_POSTGRES_ADMIN_URL, TemporaryPostgresDatabase, is_postgres_url
from .process import HarnessError, ManagedProcess, dump_logs, stop_all, wait_until
from .redis_server import RedisServer

REPO_ROOT = Path(__file__).resolve().parents[2]
NGINX_BIN = shutil.which("nginx") or "/usr/sbin/nginx"

# Settings the panel reads that the harness leaves at their defaults. They are set to ""
# (which panel.toolkit.config.Env treats as unset) so neither the caller's environment nor a
# developer's .env file (loaded with setdefault) can leak into the stack.
_NEUTRALIZED = (
    "NGINX_CONF",
    "NGINX_VHOST_DIR",
    "NGINX_RELOAD_COALESCE_SECONDS",
    "CERTPANEL_CHALLENGE_DIR",
    "CERTPANEL_CERT_DIR",
    "CERTPANEL_SECRET_KEY",
    "CERTPANEL_ENCRYPTION_KEYS",
    "CERTPANEL_ALLOWED_HOSTS",
    "CERTPANEL_CSRF_TRUSTED_ORIGINS",
    "CERTPANEL_ACME_TIMEOUT",
    "CERTPANEL_ACME_INLINE_POLL_SECONDS",
)

_CREATE_USER = """
import os
from django.contrib.auth import get_user_model
get_user_model().objects.create_superuser(
    os.environ["E2E_USERNAME"], os.environ["E2E_EMAIL"], os.environ["E2E_PASSWORD"])
try:
    from panel.toolkit.encryption import encrypt
except ImportError:
    pass
else:
    # Creates the data directory's encryption key file now, so the web server and
    # the worker do not race to create it on first use.
    encrypt("warm-up")
"""


def _dotenv_keys(path: Path) -> list[str]:
    if not path.is_file():
        return []
    keys = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.append(line.partition("=")[0].strip())
    return keys


def parse_nginx_command(output: str) -> list[str]:
    """argv from write_nginx_config's last output line.

    The command prints `" ".join(argv)`, so `-g daemon off;` arrives unquoted: every
    word after -g is the directive. A shell-quoted line (shlex.join) is accepted too.
    """
    lines = [line for line in output.strip().splitlines() if line.strip()]
    if not lines:
        raise HarnessError("write_nginx_config printed no command line")
    line = lines[-1].strip()
    if "'" in line or '"' in line:
        argv = shlex.split(line)
    else:
        argv = line.split()
        if "-g" in argv:
            i = argv.index("-g")
            argv = argv[: i + 1] + [" ".join(argv[i + 1 :])]
    if not any("daemon off" in a for a in argv):
        raise HarnessError(f"write_nginx_config's command does not keep nginx in the foreground: {line}")
    return argv


class PanelStack:
    """The panel's processes in `tmp_dir`, using `pebble` (ACME CA) and `redis` (broker).

    database_url: None or "sqlite" -> SQLite in tmp_dir; "postgres" or a postgres:// URL ->
    a fresh database (created, and dropped at stop) on that server (default
    postgresql://postgres@127.0.0.1:5432/postgres); any other URL is used as is.
    http_port defaults to pebble.http_port (where Pebble's VA connects for HTTP-01).
    panel_port: serve the panel over HTTPS through nginx on this port (0: a free one), as in
    production (CERTPANEL_PANEL_PORT, proxying to gunicorn); `panel_url` is its address.
    """

    def __init__(
        self,
        tmp_dir,
        pebble: Pebble,
        redis: RedisServer,
        *,
        database_url: str | None = None,
        http_port: int | None = None,
        https_port: int | None = None,
        extra_env: dict[str, str] | None = None,
        username: str = "admin",
        password: str | None = None,
        web_workers: int = 2,
        worker_concurrency: int = 2,
        worker_queues: str = "acme,deploy,default",
        python: str = sys.executable,
        start_timeout: float = 60.0,
        panel_port: int | None = None,
    ):
        self.tmp_dir = Path(tmp_dir).resolve()
        self.pebble = pebble
        self.redis = redis
        self.requested_database_url = database_url
        self.http_port = http_port or pebble.http_port
        self.https_port = https_port or free_port()
        self.web_port = free_port()
        self.panel_port = (panel_port or free_port()) if panel_port is not None else None
        self.extra_env = dict(extra_env or {})
        self.username = username
        self.password = password or secrets.token_urlsafe(16)
        self.web_workers = web_workers
        self.worker_concurrency = worker_concurrency
        self.worker_queues = worker_queues
        self.python = python
        self.start_timeout = start_timeout

        self.data_dir = self.tmp_dir / "data"
        self.www_dir = self.tmp_dir / "www"
        self.log_dir = self.tmp_dir / "logs"
        self.token: str | None = None
        self.database: TemporaryPostgresDatabase | None = None
        self.database_url: str | None = None
        self.env: dict[str, str] = {}
        self.nginx: ManagedProcess | None = None
        self.web: ManagedProcess | None = None
        self.worker: ManagedProcess | None = None
        self.beat: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []
        self.timings: dict[str, float] = {}
        self._session: requests.Session | None = None
        self._stopped = False

    # --- addresses
    @property
    def web_url(self) -> str:
        return f"http://{LOOPBACK}:{self.web_port}"

    @property
    def panel_url(self) -> str:
        """The panel over HTTPS through nginx (panel_port=...)."""
        if self.panel_port is None:
            raise HarnessError("this stack does not serve the panel on its own HTTPS port")
        return f"https://{LOOPBACK}:{self.panel_port}"

    @property
    def nginx_error_log(self) -> Path:
        return self.data_dir / "nginx" / "logs" / "error.log"

    # --- environment
    def build_env(self) -> dict[str, str]:
        drop = ("CERTPANEL_", "NGINX_", "DJANGO_SUPERUSER_")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(drop) and k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        }
        for key in (*_NEUTRALIZED, *_dotenv_keys(REPO_ROOT / ".env")):
            env[key] = ""
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "panel.settings",
                "PYTHONUNBUFFERED": "1",
                "CERTPANEL_DATA_DIR": str(self.data_dir),
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis.url,
                "NGINX_BIN": NGINX_BIN,
                "NGINX_HTTP_PORT": str(self.http_port),
                "NGINX_HTTPS_PORT": str(self.https_port),
                # Both loopback addresses: sites are served over IPv4 and IPv6 (free_port checks both).
                "NGINX_LISTEN_ADDRESS": f"{LOOPBACK},{LOOPBACK6}",
                "CERTPANEL_CA_BUNDLE": str(self.pebble.ca_bundle_path),
                "CERTPANEL_ALLOWED_ROOTS": str(self.www_dir),
                "CERTPANEL_TASK_VISIBILITY_TIMEOUT": "3",
                "CERTPANEL_DEBUG": "1",
                # The panel resolves names as Pebble does (challtestsrv: everything -> 127.0.0.1).
                "CERTPANEL_DNS_RESOLVERS": self.pebble.dns_address,
            }
        )
        if self.panel_port is not None:
            env["CERTPANEL_PANEL_PORT"] = str(self.panel_port)
            env["CERTPANEL_PANEL_UPSTREAM"] = f"{LOOPBACK}:{self.web_port}"
        env.update(self.extra_env)
        return env

    def _resolve_database(self) -> None:
        url = self.requested_database_url
        if url in (None, "", "sqlite"):
            self.database_url = f"sqlite:///{self.tmp_dir / 'panel.sqlite3'}"
        elif url == "postgres" or is_postgres_url(url):
            self.database = TemporaryPostgresDatabase(DEFAULT_POSTGRES_ADMIN_URL if url == "postgres" else url).create()
            self.database_url = self.database.url
        else:
            self.database_url = url

    # --- manage.py
    def manage(self, *args: str, timeout: float = 120.0, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """Run `manage.py ARGS` with the stack's environment; output also goes to logs/manage.log."""
        started = time.monotonic()
        result = subprocess.run(
            [self.python, "manage.py", *args],
            cwd=REPO_ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "manage.log", "a") as log:
            log.write(
                f"=== manage.py {' '.join(args)} -> {result.returncode} ({time.monotonic() - started:.2f}s)\n"
                f"{result.stdout}{result.stderr}\n"
            )
        if check and result.returncode != 0:
            raise HarnessError(
                f"manage.py {' '.join(args)} failed with status {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def _process(self, name: str, argv: list[str], log_name: str | None = None) -> ManagedProcess:
        return ManagedProcess(name, argv, self.log_dir / f"{log_name or name}.log", env=self.env, cwd=REPO_ROOT)

    # --- lifecycle
    def start(self) -> "PanelStack":
        started = time.monotonic()
        try:
            for d in (self.data_dir, self.www_dir, self.log_dir):
                d.mkdir(parents=True, exist_ok=True)
            self._resolve_database()
            self.env = self.build_env()

            t = time.monotonic()
            self.manage("migrate", "--noinput")
            self.timings["migrate"] = time.monotonic() - t

            with ThreadPoolExecutor(max_workers=1) as pool:
                nginx_ready = pool.submit(self._start_nginx)
                # Web and worker boot (several seconds) while the user and token are created;
                # nothing talks to them before start() returns.
                t = time.monotonic()
                self.web = self._process(
                    "gunicorn",
                    [
                        self.python, "-m", "gunicorn", "panel.wsgi:application",
                        "-b", f"{LOOPBACK}:{self.web_port}",
                        "-w", str(self.web_workers),
                        "--access-logfile", "-",
                        "--error-logfile", "-",
                        "--graceful-timeout", "5",
                        "--timeout", "120",
                    ],
                    "web",
                ).start()
                self.start_worker(wait=False)
                self.manage(
                    "shell", "-c", _CREATE_USER,
                    env={"E2E_USERNAME": self.username, "E2E_EMAIL": f"{self.username}@example.test",
                         "E2E_PASSWORD": self.password},
                )
                self.timings["create_user"] = time.monotonic() - t
                self.token = self.manage("create_api_token", self.username).stdout.strip().splitlines()[-1].strip()
                self.timings["api_token"] = time.monotonic() - t
                wait_until(self._web_answers, self.start_timeout, "gunicorn to answer HTTP", processes=(self.web,))
                self.timings["web_ready"] = time.monotonic() - t
                self.wait_worker_ready()
                self.timings["worker_ready"] = time.monotonic() - t
                nginx_ready.result()
        except BaseException:
            self.timings["total"] = time.monotonic() - started
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - started
        return self

    def _start_nginx(self) -> None:
        t = time.monotonic()
        argv = parse_nginx_command(self.manage("write_nginx_config").stdout)
        self.nginx = self._process("nginx", argv).start()
        wait_until(
            lambda: self.http_get("unknown-host.invalid").status_code == 404,
            self.start_timeout,
            "nginx to answer 404 for an unknown host",
            processes=(self.nginx,),
        )
        self.timings["nginx_ready"] = time.monotonic() - t

    def _web_answers(self) -> bool:
        requests.get(self.web_url + "/", timeout=2, allow_redirects=False)
        return True

    def start_worker(self, wait: bool = True) -> ManagedProcess:
        """Start a (further) Celery worker; it becomes `.worker`. Waits for "ready." unless wait=False."""
        n = len(self.workers) + 1
        worker = self._process(
            f"celery-worker-{n}",
            [
                self.python, "-m", "celery", "-A", "panel", "worker",
                "-Q", self.worker_queues,
                "-c", str(self.worker_concurrency),
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-l", "info",
                "-n", f"worker{n}-{self.web_port}@%h",
            ],
            f"worker-{n}",
        ).start()
        self.workers.append(worker)
        self.worker = worker
        if wait:
            self.wait_worker_ready(worker)
        return worker

    def start_beat(self) -> ManagedProcess:
        """Celery beat with its schedule file in the data directory (periodic tasks: renewal sweep...)."""
        self.beat = self._process(
            "celery-beat",
            [self.python, "-m", "celery", "-A", "panel", "beat", "-l", "info",
             "-s", str(self.data_dir / "celerybeat-schedule")],
            "beat",
        ).start()
        self.beat.wait_for_log(r"beat: Starting", self.start_timeout)
        return self.beat

    def wait_worker_ready(self, worker: ManagedProcess | None = None, timeout: float | None = None) -> None:
        (worker or self.worker).wait_for_log(r"@\S+ ready\.", timeout or self.start_timeout)

    def kill_worker(self, sig: int = signal.SIGKILL) -> None:
        """Signal the current worker's whole process group (main process and pool children)."""
        if self.worker is None:
            raise HarnessError("no worker to kill")
        self.worker.kill(sig)

    @property
    def worker_alive(self) -> bool:
        return self.worker is not None and self.worker.alive

    def stop(self) -> None:
        """Stop every process (workers, web, nginx) and drop a temporary database. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        errors = []
        processes = [p for p in (self.beat, *reversed(self.workers), self.web, self.nginx) if p is not None]
        try:
            stop_all(processes, timeout=10)
        except Exception as exc:  # noqa: BLE001 - still drop the database
            errors.append(repr(exc))
        if self._session is not None:
            self._session.close()
        if self.database is not None:
            try:
                self.database.drop()
            except Exception as exc:  # noqa: BLE001
                errors.append(f"drop database {self.database.name}: {exc!r}")
        if errors:
            raise HarnessError("PanelStack.stop: " + "; ".join(errors))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- HTTP
    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
            self._session.headers["Accept"] = "application/json"
            if self.token:
                self._session.headers["Authorization"] = f"Token {self.token}"
        return self._session

    def api(self, method: str, path: str, json=None, **kwargs) -> requests.Response:
        """An authenticated request (`Authorization: Token ...`) to the web server; `path` like "/api/sites/"."""
        url = path if path.startswith("http") else f"{self.web_url}/{path.lstrip('/')}"
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, url, json=json, **kwargs)

    def http_get(self, host: str, path: str = "/", **kwargs) -> requests.Response:
        """GET through the panel's nginx (HTTP port) with `Host: host`."""
        kwargs.setdefault("timeout", 5)
        kwargs.setdefault("allow_redirects", False)
        headers = {"Host": host, **kwargs.pop("headers", {})}
        return requests.get(f"http://{LOOPBACK}:{self.http_port}{path}", headers=headers, **kwargs)

    # --- diagnostics
    @property
    def log_paths(self) -> list[Path]:
        """The panel's own logs (manage.py, nginx, web, workers, nginx's error log); not Pebble's or Redis's."""
        paths = sorted(self.log_dir.glob("*.log")) if self.log_dir.is_dir() else []
        if self.nginx_error_log.exists():
            paths.append(self.nginx_error_log)
        return paths

    def dump_logs(self, lines: int = 80) -> str:
        return dump_logs(self.log_paths, lines)


@contextmanager
def running_stack(tmp_dir, *, pebble_options: dict | None = None, **stack_options):
    """Pebble + Redis + PanelStack under `tmp_dir`, all stopped on exit. Yields the PanelStack."""
    tmp_dir = Path(tmp_dir)
    with Pebble(tmp_dir / "pebble", **(pebble_options or {})) as pebble, RedisServer(tmp_dir / "redis") as redis:
        with PanelStack(tmp_dir / "panel", pebble, redis, **stack_options) as stack:
            yield stack
