"""`manage.py runpanel`: the whole panel on one machine, in the foreground.

compile translations -> migrate -> an admin user on first start -> private Redis (unless REDIS_URL is set)
-> private nginx (unless NGINX_CONF is set) -> gunicorn, Celery worker, Celery beat.
If any child dies the others are stopped and the launcher exits non-zero; Ctrl-C or
SIGTERM stops them all cleanly.

`--production` is the installed layout (scripts/install) where systemd is not PID 1: the system's
nginx, Redis and database, nothing private, nothing migrated or created; started as root it runs
web, the ACME worker and beat as CERTPANEL_SERVICE_USER and only the deploy worker as root, as the
systemd units do.
"""

import os
import pwd
import secrets
import signal
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from certs.acme.client import AcmeError
from panel import embedded
from panel.deployment.nginx import panel_vhost
from panel.hosting import panel_domain
from panel.deployment.nginx.apply import (
    layout,
    nginx_command,
    start_or_reload_system_nginx,
    test_config,
    write_private_main_config,
)


class StopRequested(Exception):
    pass


def _raise_stop(signum, frame):
    raise StopRequested(signal.Signals(signum).name)


class Command(BaseCommand):
    help = "Run the panel (web, Celery worker and beat, and a private Redis and nginx unless configured)."
    production = False

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address gunicorn binds (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port gunicorn binds (default 8000)")
        parser.add_argument("--production", action="store_true",
                            help="the installed layout: system nginx, Redis and database; gunicorn on "
                                 "CERTPANEL_PANEL_UPSTREAM; web, ACME worker and beat as CERTPANEL_SERVICE_USER")

    def handle(self, *args, host, port, production=False, **options):
        self.production = production
        if production:
            self.check_production()
            self.password = None
            host, port = self.upstream()
        else:
            # .mo files are built, never committed; compilemessages skips the up-to-date ones.
            # Ignoring every directory stops it walking the tree (.venv, data/): LOCALE_PATHS only.
            call_command("compilemessages", ignore_patterns=["*"], verbosity=0)
            call_command("migrate", interactive=False, verbosity=max(options["verbosity"] - 1, 0))
            self.password = self.ensure_admin()  # printed once, then forgotten
            if settings.PANEL_PORT:  # the panel behind nginx's HTTPS port: gunicorn where its vhost points
                host, port = self.upstream()

        supervisor = embedded.Supervisor()
        failure = None
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                self.start_all(supervisor, host, port)
            except embedded.StartupError as exc:
                failure = str(exc)
            else:
                self.print_banner(host, port)
                self.set_initial_domain()
                name, code = supervisor.supervise(on_restart=self.report_restart)
                failure = f"{name} {embedded.describe_exit(code)}"
            self.stderr.write(f"{failure}; stopping CertPanel...")
        except StopRequested as stop:
            self.stdout.write(f"\n{stop}: stopping CertPanel...")
        finally:
            self.print_password()  # if startup did not get as far as the banner
            self.stdout.flush()
            # A second Ctrl-C must not interrupt the clean stop; stop_all kills what hangs.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            killed = supervisor.stop_all()
            if killed:
                self.stderr.write(f"killed after {supervisor.stop_timeout:g} s: {', '.join(killed)}")
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failure:
            raise CommandError(failure)
        self.stdout.write("CertPanel stopped.")

    def check_production(self):
        missing = [name for name in ("NGINX_CONF", "REDIS_URL", "DATABASE_URL") if not os.environ.get(name)]
        if missing:
            raise CommandError(f"--production runs on the system's nginx, Redis and database: set {', '.join(missing)} "
                               "(scripts/install writes them to /etc/certpanel/certpanel.env)")
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise CommandError("the database needs migrations this release brings: run scripts/upgrade")
        self.as_user = {}
        if os.geteuid() == 0 and settings.SERVICE_USER:
            try:
                account = pwd.getpwnam(settings.SERVICE_USER)
            except KeyError:
                raise CommandError(f"CERTPANEL_SERVICE_USER={settings.SERVICE_USER}: no such user") from None
            groups = [g for g in os.getgrouplist(account.pw_name, account.pw_gid) if g != account.pw_gid]
            self.as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": groups}
            self.user_home = account.pw_dir

    def upstream(self):
        address = settings.PANEL_UPSTREAM
        if address.startswith("unix:") or ":" not in address:
            raise CommandError(f"CERTPANEL_PANEL_UPSTREAM={address}: --production expects HOST:PORT on loopback")
        host, _, port = address.rpartition(":")
        return host.strip("[]"), int(port)

    def ensure_admin(self):
        """Create `admin` with a generated password if there is no superuser; return the password."""
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return None
        if User.objects.filter(username="admin").exists():
            self.stderr.write("No superuser exists and the user 'admin' is not one: run `manage.py createsuperuser`.")
            return None
        password = secrets.token_urlsafe(16)
        User.objects.create_superuser("admin", email="", password=password)
        return password

    def start_all(self, supervisor, host, port):
        if self.production:
            return self.start_production(supervisor, host, port)
        child_env = os.environ.copy()
        python = sys.executable
        cwd = settings.BASE_DIR

        # Refuse early and clearly instead of letting a child die on a taken port.
        ports = [("gunicorn", host, port)]
        if settings.NGINX_PRIVATE:
            nginx_hosts = layout().listen_hosts()  # one per address family, or those configured
            ports += [("nginx", host, number) for host in nginx_hosts
                      for number in (settings.NGINX_HTTP_PORT, settings.NGINX_HTTPS_PORT)]
        for name, address, number in ports:
            if embedded.port_answers(address, number):
                where = f"[{address}]:{number}" if ":" in address else f"{address}:{number}"
                raise embedded.StartupError(f"{name}: something already listens on {where}")

        if not os.environ.get("REDIS_URL"):
            socket_path = embedded.redis_socket_path(settings.REDIS_URL)
            embedded.start_private_redis(supervisor, socket_path)
            child_env["REDIS_URL"] = settings.REDIS_URL

        if settings.NGINX_PRIVATE:
            write_private_main_config()
            self.write_panel_vhost()
            ok, output = test_config()
            if not ok:
                raise embedded.StartupError(f"nginx rejected the private config:\n{output}")
            process = supervisor.start("nginx", nginx_command("-g", "daemon off;"), env=child_env)
            for nginx_host in nginx_hosts:
                embedded.wait_for_port(nginx_host, settings.NGINX_HTTP_PORT, process=process)

        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        # No control socket: gunicorn's default is one per user (~/.gunicorn), shared by every instance.
        process = supervisor.start(
            "gunicorn",
            [python, "-m", "gunicorn", "panel.wsgi:application", "--bind", bind, "--workers", "2",
             "--no-control-socket"],
            env=child_env,
            cwd=cwd,
        )
        embedded.wait_for_port(host, port, process=process)
        # Celery's processes are started again when they end (a broker that went away can end a
        # worker): nginx keeps serving the sites meanwhile, and the database sweeps pick up what
        # their tasks left unfinished.
        supervisor.start(
            "celery worker",
            [python, "-m", "celery", "-A", "panel", "worker", "-Q", "acme,deploy,default", "-l", "info"],
            restart=True,
            env=child_env,
            cwd=cwd,
        )
        supervisor.start(
            "celery beat",
            [python, "-m", "celery", "-A", "panel", "beat", "-l", "info", "-s", settings.CELERY_BEAT_SCHEDULE_FILENAME],
            restart=True,
            env=child_env,
            cwd=cwd,
        )

    def start_production(self, supervisor, host, port):
        if embedded.port_answers(host, port):
            raise embedded.StartupError(f"gunicorn: something already listens on {host}:{port}")
        self.write_panel_vhost()
        ok, output = test_config()
        if not ok:
            raise embedded.StartupError(f"nginx rejected the configuration:\n{output}")
        started = start_or_reload_system_nginx()
        if started:
            self.stdout.write("nginx was not running: started it")
        python, cwd = sys.executable, settings.BASE_DIR
        service_env = os.environ.copy()
        if self.as_user:
            service_env["HOME"] = self.user_home
        as_service = {"env": service_env, "cwd": cwd, **self.as_user}
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        process = supervisor.start(
            "gunicorn",
            [python, "-m", "gunicorn", "panel.wsgi:application", "--bind", bind, "--workers", "2",
             "--no-control-socket"],
            **as_service,
        )
        embedded.wait_for_port(host, port, process=process)
        celery = [python, "-m", "celery", "-A", "panel"]
        supervisor.start("celery worker (acme)", [*celery, "worker", "-Q", "acme,default", "-n", "acme@%h", "-l", "info"],
                         restart=True, **as_service)
        # The one process with root's rights (when started as root): vhosts, certificate files, nginx.
        supervisor.start("celery worker (deploy)", [*celery, "worker", "-Q", "deploy", "-n", "deploy@%h", "-l", "info"],
                         restart=True, env=os.environ.copy(), cwd=cwd)
        supervisor.start("celery beat", [*celery, "beat", "-l", "info", "-s", settings.CELERY_BEAT_SCHEDULE_FILENAME],
                         restart=True, **as_service)

    def write_panel_vhost(self):
        """The panel's own HTTPS vhost (or its removal when the port is off), before nginx starts."""
        ok, output = panel_vhost.install(reload=False)
        if not ok:
            raise embedded.StartupError(f"nginx rejected the panel's vhost:\n{output}")

    def set_initial_domain(self):
        """CERTPANEL_PANEL_DOMAIN on a first start: the panel orders its certificate. A refusal is
        reported, never fatal: the panel goes on with its self-signed certificate."""
        try:
            row = panel_domain.set_initial_domain()
        except (ValidationError, AcmeError) as exc:
            self.stderr.write(f"CERTPANEL_PANEL_DOMAIN={settings.PANEL_DOMAIN}: not set: {exc}")
            return
        if row:
            self.stdout.write(f"  The panel's domain is {row.domain}: its certificate is being ordered.")

    def report_restart(self, name, returncode):
        self.stderr.write(f"{name} {embedded.describe_exit(returncode)}; starting it again")

    def print_password(self):
        # stdout only, once: never through logging, never into a file of ours.
        if self.password:
            self.stdout.write(
                f"  Log in as admin with password: {self.password}\n"
                "  (shown only now; change it with `manage.py changepassword admin`)"
            )
            self.password = None

    def print_banner(self, host, port):
        if self.production:
            lines = ["", "CertPanel is running (production layout).",
                     f"  Panel:  https://<this server>:{settings.PANEL_PORT}/ (gunicorn on {host}:{port})",
                     f"  nginx:  the system's ({settings.NGINX_CONF}); HTTP port {settings.NGINX_HTTP_PORT}, "
                     f"HTTPS port {settings.NGINX_HTTPS_PORT}",
                     f"  Web, ACME worker and beat run as {settings.SERVICE_USER or 'this user'}."]
            self.stdout.write("\n".join(lines) + "\nPress Ctrl-C to stop.\n")
            self.stdout.flush()
            return
        url_host = f"[{embedded.connect_host(host)}]" if ":" in host else embedded.connect_host(host)
        lines = ["", "CertPanel is running.", f"  Panel:  http://{url_host}:{port}/"]
        if settings.PANEL_PORT:
            lines[-1] = f"  Panel:  https://127.0.0.1:{settings.PANEL_PORT}/ (nginx; gunicorn on {url_host}:{port})"
        if settings.NGINX_PRIVATE:
            lines.append(
                f"  nginx:  HTTP port {settings.NGINX_HTTP_PORT}, HTTPS port {settings.NGINX_HTTPS_PORT} "
                f"(private, under {settings.NGINX_PREFIX})"
            )
        else:
            lines.append(
                f"  nginx:  the system's ({settings.NGINX_CONF}); HTTP port {settings.NGINX_HTTP_PORT}, "
                f"HTTPS port {settings.NGINX_HTTPS_PORT}"
            )
        # REDIS_URL may carry a password: name the private socket only.
        redis = "from REDIS_URL" if os.environ.get("REDIS_URL") else f"private, {settings.REDIS_URL}"
        lines.append(f"  Redis:  {redis}")
        self.stdout.write("\n".join(lines))
        self.print_password()
        self.stdout.write("Press Ctrl-C to stop.\n")
        self.stdout.flush()
