"""scripts/install on this machine: a temporary prefix, high ports on loopback, Debian's nginx
binary, the PostgreSQL server and a Redis; the installed panel runs under `runpanel --production`
(systemd is not PID 1 here), as the systemd units would run it."""

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
import urllib3
from celery import Celery
from cryptography.x509.oid import NameOID

from tests.support import tls_peer_certificate, wait_for_served_certificate
from tests.support.ports import free_port
from tests.support.postgres import TemporaryPostgresDatabase, postgres_available
from tests.support.process import ManagedProcess, wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SERVICE_USER = "certpanel"
# The release an upgrade starts from: the first with scripts/install and `runpanel --production`.
# Move it forward when a release is cut; the upgrade test installs it with its own installer.
PREVIOUS_RELEASE = "f2fe3e9caee8"

NGINX_MAIN = """\
# What Debian's /etc/nginx/nginx.conf does, below a test prefix.
user www-data;
worker_processes 1;
pid {prefix}/run/nginx.pid;
error_log {prefix}/var/log/nginx/error.log;
events {{
    worker_connections 256;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/var/log/nginx/access.log;
    client_body_temp_path {prefix}/var/lib/nginx/body;
    proxy_temp_path {prefix}/var/lib/nginx/proxy;
    fastcgi_temp_path {prefix}/var/lib/nginx/fastcgi;
    uwsgi_temp_path {prefix}/var/lib/nginx/uwsgi;
    scgi_temp_path {prefix}/var/lib/nginx/scgi;
    server_names_hash_bucket_size 128;
    include {prefix}/etc/nginx/conf.d/*.conf;
}}
"""


def clean_env() -> dict[str, str]:
    """This environment without the test run's panel settings: the installed panel reads its own."""
    drop = ("CERTPANEL_", "NGINX_", "DJANGO_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop) and k not in ("DATABASE_URL", "REDIS_URL")}


class Installed:
    """One installation below a temporary prefix, and what the installer printed."""

    def __init__(self, prefix: Path, pebble, redis_url: str, database_url: str):
        self.prefix = prefix
        self.pebble = pebble
        self.redis_url = redis_url
        self.database_url = database_url
        self.http_port = pebble.http_port
        self.https_port = free_port()
        self.panel_port = free_port()
        self.web_port = free_port()
        self.www = prefix / "srv" / "www"
        # Pebble's trust anchor where the panel's user can read it.
        self.ca_bundle = prefix / "pebble-ca.pem"
        shutil.copyfile(pebble.ca_bundle_path, self.ca_bundle)
        self.panel: ManagedProcess | None = None
        self.token = ""

    def install(self, source: Path = REPO) -> str:
        """That source's own scripts/install, as whoever installed that release ran it."""
        result = subprocess.run(
            [str(source / "scripts" / "install"), "--prefix", str(self.prefix), "--source", str(source),
             "--user", SERVICE_USER, "--http-port", str(self.http_port), "--https-port", str(self.https_port),
             "--panel-port", str(self.panel_port), "--web-port", str(self.web_port),
             "--listen-address", "127.0.0.1,::1",
             "--database-url", self.database_url, "--redis-url", self.redis_url,
             "--venv-seed", sys.prefix,
             "--env", f"CERTPANEL_CA_BUNDLE={self.ca_bundle}",
             "--env", f"CERTPANEL_DNS_RESOLVERS={self.pebble.dns_address}",
             "--env", f"CERTPANEL_EXTRA_CAS=pebble={self.pebble.directory_url}",
             "--env", f"CERTPANEL_ALLOWED_ROOTS={self.www}"],
            capture_output=True, text=True, timeout=900, env=clean_env(),
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def upgrade(self, source: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(REPO / "scripts" / "upgrade"), "--prefix", str(self.prefix), "--source", str(source),
             "--venv-seed", sys.prefix],
            capture_output=True, text=True, timeout=900, env=clean_env(),
        )

    def certpanel(self, *args, check=True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.prefix / "opt/certpanel/bin/certpanel"), *args],
                                capture_output=True, text=True, timeout=300, env=clean_env())
        assert not check or result.returncode == 0, result.stdout + result.stderr
        return result

    def start(self, log_dir: Path, through_nginx: bool = True):
        """runpanel --production; the API through the panel's HTTPS port, or straight to gunicorn."""
        self.base = f"https://127.0.0.1:{self.panel_port}" if through_nginx else f"http://127.0.0.1:{self.web_port}"
        self.panel = ManagedProcess(
            "runpanel --production", [str(self.prefix / "opt/certpanel/bin/certpanel"), "runpanel", "--production"],
            log_path=log_dir / "runpanel.log", env=clean_env(),
        ).start()
        wait_until(self.panel_answers, 90, f"the panel to answer on {self.base}", processes=(self.panel,))

    def panel_answers(self) -> bool:
        try:
            return requests.get(f"{self.base}/login/", verify=False, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def api(self, method, path, json=None):
        return requests.request(method, f"{self.base}{path}", json=json, verify=False,
                                headers={"Authorization": f"Token {self.token}"}, timeout=30)

    def add_site_with_certificate(self, name: str) -> dict:
        """A site whose page says its name, with a Pebble certificate; the certificate once valid."""
        root = self.www / name
        root.mkdir()
        (root / "index.html").write_text(f"hello from {name}\n")
        site = self.api("POST", "/api/v1/sites/", {"domains": [name], "root": str(root)})
        assert site.status_code == 201, site.text
        account = self.api("POST", "/api/v1/acme-accounts/", {"directory_url": self.pebble.directory_url})
        assert account.status_code == 201, account.text
        cert = self.api("POST", "/api/v1/certificates/", {
            "domains": [name], "acme_account": account.json()["id"], "site": site.json()["id"]})
        assert cert.status_code == 201, cert.text
        return {"site": site.json()["id"], **wait_for_valid(self, cert.json()["id"])}

    def page(self, name: str, host: str = "127.0.0.1") -> subprocess.CompletedProcess:
        return subprocess.run(["curl", "-sk", "-D", "-", "--resolve", f"{name}:{self.https_port}:{host}",
                               f"https://{name}:{self.https_port}/"], capture_output=True, text=True, timeout=30)

    def stop(self):
        if self.panel:
            self.panel.stop()
        pid_file = self.prefix / "run" / "nginx.pid"
        if pid_file.is_file():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGQUIT)
            except (ProcessLookupError, ValueError):
                pass


@pytest.fixture
def installed(tmp_path, pebble, redis_server):
    if not postgres_available():
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (make system-deps; the machine runs one)")
    # Outside pytest's root-only directory: the panel's user and nginx's workers read below it.
    prefix = Path(tempfile.mkdtemp(prefix="certpanel-install-", dir="/tmp"))
    prefix.chmod(0o755)
    (prefix / "etc/nginx").mkdir(parents=True)
    for sub in ("run", "var/log/nginx", "var/lib/nginx"):
        (prefix / sub).mkdir(parents=True)
    (prefix / "etc/nginx/nginx.conf").write_text(NGINX_MAIN.format(prefix=prefix))
    database = TemporaryPostgresDatabase(prefix="certpanel_install")  # created by the installer
    inst = Installed(prefix, pebble, redis_server.url_for(0), database.url)
    inst.www.mkdir(parents=True)
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    try:
        yield inst
    finally:
        inst.stop()
        database.created = True
        database.drop()
        shutil.rmtree(prefix, ignore_errors=True)


def test_install_serves_sites_on_both_families_and_the_panel_on_its_own_domain(installed, tmp_path):
    output = installed.install()
    assert f"https://" in output and f":{installed.panel_port}/" in output, output
    password = re.search(r"Log in as admin with password: (\S+)", output)
    assert password, output
    env_file = installed.prefix / "etc/certpanel/certpanel.env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert password.group(1) not in env_file.read_text()

    installed.start(tmp_path)
    # Web, the ACME worker and beat run as the panel's user; only the deploy worker as root.
    owners = process_owners(installed.panel.pid)
    assert owners["gunicorn"] == {SERVICE_USER} and owners["beat"] == {SERVICE_USER}, owners
    assert owners["acme@"] == {SERVICE_USER} and owners["deploy@"] == {"root"}, owners

    installed.token = installed.certpanel("create_api_token", "admin").stdout.strip().splitlines()[-1]
    body = installed.add_site_with_certificate("shop.example.test")

    # The system nginx binary serves it over IPv4 and IPv6 with Pebble's certificate.
    for host in ("127.0.0.1", "::1"):
        leaf = wait_for_served_certificate(installed.https_port, "shop.example.test",
                                           lambda c: format(c.serial_number, "x") == body["serial"], host=host)
        assert leaf.issuer != leaf.subject
        assert "hello from shop.example.test" in installed.page("shop.example.test", host).stdout

    # The panel's own domain: a Pebble certificate, shown by the next handshake, nothing restarted.
    installed.certpanel("shell", "--no-imports", "-c", SET_PEBBLE_AS_DEFAULT_CA)
    before = tls_peer_certificate("127.0.0.1", installed.panel_port, "panel.example.test")
    assert before.issuer == before.subject  # self-signed until the panel has a domain
    installed.certpanel("panel_domain", "panel.example.test")
    leaf = wait_for_served_certificate(installed.panel_port, "panel.example.test",
                                       lambda c: c.issuer != c.subject, timeout=90)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "panel.example.test" or \
        "panel.example.test" in str(leaf.extensions)
    assert installed.panel.alive

    # A second run with the same options changes nothing.
    again = installed.install()
    assert "Nothing changed" in again, again
    assert "password" not in again


def test_upgrade_keeps_data_runs_waiting_tasks_and_a_failed_migration_leaves_the_old_release(
        installed, tmp_path):
    old = tmp_path / "previous-release"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), PREVIOUS_RELEASE],
                   check=True, capture_output=True)
    try:
        upgrade_from(old, installed, tmp_path)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], capture_output=True)


def upgrade_from(old: Path, installed, tmp_path):
    installed.install(source=old)
    installed.start(tmp_path / "old", through_nginx=False)  # that release has no HTTPS port of its own
    installed.token = installed.certpanel("create_api_token", "admin").stdout.strip().splitlines()[-1]
    body = installed.add_site_with_certificate("kept.example.test")
    wait_for_served_certificate(installed.https_port, "kept.example.test",
                                lambda c: format(c.serial_number, "x") == body["serial"])

    # A release whose migration fails: the database comes back, the old release keeps serving.
    broken = tmp_path / "broken-release"
    shutil.copytree(REPO, broken, ignore=shutil.ignore_patterns(".git", ".venv", "data", "__pycache__", "test-artifacts"))
    latest = sorted(p.stem for p in (REPO / "panel/migrations").glob("0*.py"))[-1]
    (broken / "panel/migrations/0999_made_to_fail.py").write_text(FAILING_MIGRATION.format(latest=latest))
    refused = installed.upgrade(broken)  # the panel still runs: nothing it writes may be lost
    assert refused.returncode != 0 and "stop" in refused.stderr and "first" in refused.stderr, refused.stderr
    installed.panel.stop(timeout=60)
    failed = installed.upgrade(broken)
    assert failed.returncode != 0 and "keeps running" in failed.stderr, failed.stdout + failed.stderr
    installed.start(tmp_path / "old-again", through_nginx=False)
    assert installed.api("GET", f"/api/v1/certificates/{body['id']}/").json()["serial"] == body["serial"]

    # A task waits in Redis while the panel is down for the upgrade: the site's hand-written
    # addition is applied by the new release's deploy worker.
    installed.panel.stop(timeout=60)
    custom = installed.prefix / "etc/nginx/certpanel/custom" / f"site-{body['site']}"
    custom.mkdir(parents=True, exist_ok=True)
    (custom / "upgrade.conf").write_text('add_header X-Applied-After-Upgrade "yes";\n')
    Celery(broker=installed.redis_url).send_task("panel.tasks.apply_site", args=(body["site"],), queue="deploy")

    upgraded = installed.upgrade(REPO)
    assert upgraded.returncode == 0 and "Upgraded from" in upgraded.stdout, upgraded.stdout + upgraded.stderr
    installed.start(tmp_path / "new")
    wait_until(lambda: "x-applied-after-upgrade: yes" in installed.page("kept.example.test").stdout.lower(), 60,
               "the task queued before the upgrade to run")
    after = installed.api("GET", f"/api/v1/certificates/{body['id']}/").json()
    assert after["serial"] == body["serial"] and after["domains"] == ["kept.example.test"]
    for host in ("127.0.0.1", "::1"):
        assert "hello from kept.example.test" in installed.page("kept.example.test", host).stdout


SET_PEBBLE_AS_DEFAULT_CA = """
from panel.models import PanelSettings
row = PanelSettings.load()
row.default_ca = "pebble"
row.save()
"""

FAILING_MIGRATION = """\
from django.db import migrations, models


def fail(apps, schema_editor):
    raise RuntimeError("made to fail by the upgrade test")


class Migration(migrations.Migration):
    dependencies = [("panel", "{latest}")]
    operations = [
        migrations.CreateModel("LeftBehind", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.RunPython(fail),
    ]
"""


def wait_for_valid(installed, cert_id, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        body = installed.api("GET", f"/api/v1/certificates/{cert_id}/").json()
        status = body["order"]["status"]
        if status == "valid" and body.get("serial"):
            return body
        assert status != "invalid" and time.monotonic() < deadline, body
        time.sleep(0.3)


def process_owners(launcher_pid: int) -> dict[str, set[str]]:
    """User names of the launcher's descendants, by what their command line holds."""
    owners: dict[str, set[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if not descends_from(int(entry.name), launcher_pid):
            continue
        uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
        for marker in ("gunicorn", "beat", "acme@", "deploy@"):
            if marker in cmdline:
                owners.setdefault(marker, set()).add(pwd.getpwuid(uid).pw_name)
    return owners


def descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(re.search(r"^PPid:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1))
        except (OSError, AttributeError):
            return False
    return False
