"""http-01-nginx and http-01-apache against Pebble: an nginx with a hand-written multi-server
config and Debian's apache2, each on the port Pebble validates HTTP-01 at (the panel's own
nginx listens elsewhere). The certificate is issued through that server, renews through the
beat sweep and re-runs its install target, and every file of the server's config tree is
byte-identical afterwards, also when the CA's validation fails."""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from certs.challenges import config_edit
from certs.challenges.config_edit import SELF_CHECK_AGENT, http_get
from panel.toolkit.files import file_lock
from tests.e2e.conftest import _register
from tests.e2e.test_external_modes import issue_install_and_renew, port_answers, presented_at_renewal
from tests.e2e.test_issuance import wait_for_status
from tests.support import PanelStack
from tests.support.panel import NGINX_BIN, REPO_ROOT
from tests.support.ports import LOOPBACK, free_port
from tests.support.process import wait_until
from tests.test_nginx_mode import left_in, tree_digest

# Without reuse, the renewal presents the challenges again instead of riding on the first
# order's valid authorizations (almost always: see presented_at_renewal).
pytestmark = pytest.mark.pebble(env={"PEBBLE_AUTHZREUSE": "0"})

SHOP = ["shop.example.test", "www.shop.example.test"]
# The default server answers it on 127.0.0.1, where the mode checks its answer; Pebble is told
# the name is at 127.0.0.3, where nothing listens, so the CA's validation fails.
UNREACHABLE = "unreachable.example.test"
APACHE_MODULES = "/usr/lib/apache2/modules"


@pytest.fixture
def readable_dir():
    """A directory the other server's workers can read (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="certpanel-e2e-servers-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def hand_made_nginx(readable_dir, pebble):
    """An nginx as an admin writes one: a main file, conf.d with a force-HTTPS block and
    another site, a sites-enabled app behind a symlink; nothing in it knows about ACME."""
    port = pebble.http_port
    conf, run = readable_dir / "nginx", readable_dir / "nginx-run"
    for directory in (conf / "conf.d", conf / "sites-available", conf / "sites-enabled", run):
        directory.mkdir(parents=True)
    (conf / "nginx.conf").write_text(
        f"{'user root;' if os.geteuid() == 0 else ''}\npid {run}/nginx.pid;\nerror_log {run}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n    access_log {run}/access.log;\n    client_body_temp_path {run};\n"
        "    include conf.d/*.conf;\n    include sites-enabled/*;\n"
        f"    server {{ listen {LOOPBACK}:{port} default_server; return 404; }}\n}}\n")
    (conf / "conf.d" / "shop.conf").write_text(
        f"server {{\n    listen {LOOPBACK}:{port};\n    server_name {' '.join(SHOP)};\n"
        "    return 301 https://$host$request_uri;\n}\n"
        f"server {{\n    listen {LOOPBACK}:{port};\n    server_name blog.example.test;\n"
        "    location / { return 200 \"blog\\n\"; }\n}\n")
    (conf / "sites-available" / "app").write_text(
        f"server {{\n\tlisten {LOOPBACK}:{port};\n\tserver_name app.example.test;\n\treturn 200 'app';\n}}\n")
    (conf / "sites-enabled" / "app").symlink_to("../sites-available/app")
    config = conf / "nginx.conf"
    subprocess.run([NGINX_BIN, "-c", config], check=True)
    wait_until(lambda: port_answers(port), 20, "the hand-written nginx to listen")
    yield config, run / "access.log"
    subprocess.run([NGINX_BIN, "-c", config, "-s", "quit"], check=False)


@pytest.fixture
def hand_made_apache(readable_dir, pebble):
    """Debian's apache2 with a hand-written config: a default virtual host and two sites in one
    file, enabled through symlinks."""
    port = pebble.http_port
    conf, run, docs = readable_dir / "apache2", readable_dir / "apache2-run", readable_dir / "www"
    for directory in (conf / "sites-available", conf / "sites-enabled", run, docs):
        directory.mkdir(parents=True)
    (docs / "index.html").write_text("hand-made\n")
    os.chmod(docs / "index.html", 0o644)
    (conf / "apache2.conf").write_text(
        f"ServerRoot {conf}\nPidFile {run}/apache2.pid\nDefaultRuntimeDir {run}\nErrorLog {run}/error.log\n"
        f'CustomLog {run}/access.log "%U %>s \\"%{{User-Agent}}i\\""\n'
        + "".join(f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so\n"
                  for name in ("mpm_event", "authz_core", "alias", "dir"))
        + "User www-data\nGroup www-data\nServerName localhost\n"
        f"Listen {LOOPBACK}:{port}\n"
        f"<Directory {docs}>\n    Require all granted\n</Directory>\n"
        "IncludeOptional sites-enabled/*.conf\n")
    (conf / "sites-available" / "000-default.conf").write_text(
        f"<VirtualHost *:{port}>\n    DocumentRoot {docs}\n</VirtualHost>\n")
    (conf / "sites-available" / "sites.conf").write_text(
        f"<VirtualHost *:{port}>\n    ServerName {SHOP[0]}\n    ServerAlias {SHOP[1]}\n    DocumentRoot {docs}\n"
        f"</VirtualHost>\n\n<VirtualHost *:{port}>\n    ServerName blog.example.test\n    DocumentRoot {docs}\n"
        "</VirtualHost>\n")
    for site in ("000-default.conf", "sites.conf"):
        (conf / "sites-enabled" / site).symlink_to(f"../sites-available/{site}")
    config = conf / "apache2.conf"
    subprocess.run(["apache2", "-f", config, "-k", "start"], check=True)
    wait_until(lambda: port_answers(port), 20, "apache2 to listen")
    yield config, run / "access.log"
    subprocess.run(["apache2", "-f", config, "-k", "stop"], check=False)


@pytest.fixture
def stack(request, tmp_path, pebble, redis_server, readable_dir):
    install_root = tmp_path / "install"
    (install_root / "site").mkdir(parents=True)
    stack = PanelStack(tmp_path / "panel", pebble, redis_server, http_port=free_port(), extra_env={
        "CERTPANEL_EXTERNAL_CONFIG_ROOTS": str(readable_dir),
        "CERTPANEL_EXTERNAL_HTTP_PORT": str(pebble.http_port),
        "CERTPANEL_EXTERNAL_CHALLENGE_DIR": str(readable_dir / "challenges"),
        "CERTPANEL_INSTALL_ROOTS": str(install_root),
        "CERTPANEL_TEST_CLOCK_FILE": str(tmp_path / "panel" / "clock"),
        "CERTPANEL_RENEWAL_SWEEP_SECONDS": "1",
        "CERTPANEL_ORDER_MAX_RETRIES": "0",
        "CERTPANEL_RENEWAL_MIN_AGE_SECONDS": "8",  # see tests/e2e/test_renewal.py
    })
    _register(request, stack)
    stack.start()
    stack.start_beat()
    stack.install_root = install_root
    yield stack
    stack.stop()


def request_certificate(stack, challenge, config, domains):
    account = stack.api("POST", "/api/v1/acme-accounts/", {"directory_url": stack.pebble.directory_url,
                                                           "email": "ops@example.com"})
    assert account.status_code == 201, account.text
    answer = stack.api("POST", "/api/v1/certificates/", {
        "domains": domains, "acme_account": account.json()["id"], "challenge": challenge,
        "server_config": str(config)})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def version_count(stack, cert_id):
    script = ("from certs.models import CertificateVersion;"
              f"print(CertificateVersion.objects.filter(certificate={cert_id}).count())")
    return int(stack.manage("shell", "-c", script).stdout.split()[-1])


def challenges_answered(access_log):
    """The CA's challenge requests that server answered with 200 (not the mode's own checks)."""
    return [line for line in access_log.read_text().splitlines()
            if "/.well-known/acme-challenge/" in line and " 200 " in line and SELF_CHECK_AGENT not in line]


MODES = [("http-01-nginx", "hand_made_nginx"), ("http-01-apache", "hand_made_apache")]


@pytest.mark.parametrize("mode, server", MODES)
def test_issued_through_the_hand_made_server_renewed_and_its_config_left_as_it_was(stack, mode, server, request):
    config, access_log = request.getfixturevalue(server)
    before = tree_digest(config.parent)
    cert_id = request_certificate(stack, mode, config, SHOP)
    issued = wait_for_status(stack, cert_id, "valid")
    assert issued["order"]["status"] == "valid", issued
    assert version_count(stack, cert_id) == 1
    assert tree_digest(config.parent) == before
    first, renewed = issue_install_and_renew(stack, cert_id)
    assert version_count(stack, cert_id) == 2
    assert tree_digest(config.parent) == before
    # It was that server that answered Pebble, for both names, at issuance and at renewal.
    assert len(challenges_answered(access_log)) >= 4, access_log.read_text()
    assert presented_at_renewal(renewed, mode) == set(SHOP)


@pytest.mark.parametrize("mode, server", MODES)
def test_a_failed_validation_reports_the_cas_words_and_leaves_the_config_as_it_was(stack, mode, server, request,
                                                                                    readable_dir, pebble):
    config, _ = request.getfixturevalue(server)
    before = tree_digest(config.parent)
    pebble.add_a_record(UNREACHABLE, ["127.0.0.3"])
    try:
        failed = wait_for_status(stack, request_certificate(stack, mode, config, [UNREACHABLE]), "invalid")
    finally:
        pebble.clear_a_record(UNREACHABLE)
    assert failed["order"]["status"] == "invalid", failed
    assert "127.0.0.3" in failed["last_error"], failed
    assert any(f"Challenge presented ({mode}) for {UNREACHABLE}" in line for line in failed["order"]["log"])
    assert version_count(stack, failed["id"]) == 0
    assert tree_digest(config.parent) == before
    assert left_in(readable_dir / "challenges") == []  # the snippet and token files are gone too



# --- several orders on one nginx config, and a worker killed half-way


def nginx_accepts(config):
    return subprocess.run([NGINX_BIN, "-t", "-c", config], capture_output=True).returncode == 0


# What a Celery worker does for an order (certs.orders._present_external), killed where it
# would store the state: after the include line is in the config and nginx serves the answer.
PRESENT_AND_GET_KILLED = """
import os, signal, django
django.setup()
from certs.challenges import external
from certs.models import Certificate
certificate = Certificate(challenge="http-01-nginx", server_config={config!r})
with external.present(certificate, [external.Presentation({name!r}, {token!r}, {key!r})]):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_worker_killed_between_presenting_and_storing_leaves_nothing_the_next_order_keeps(
        stack, hand_made_nginx, readable_dir, pebble):
    config, access_log = hand_made_nginx
    before = tree_digest(config.parent)
    token = "killedWorker_" + "k" * 30
    killed = subprocess.run(
        [stack.python, "-c", PRESENT_AND_GET_KILLED.format(config=str(config), name="blog.example.test",
                                                           token=token, key=f"{token}.thumbprint")],
        env=stack.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    blog_challenge = ("blog.example.test", f"/.well-known/acme-challenge/{token}")
    assert http_get(LOOPBACK, pebble.http_port, *blog_challenge) == (200, f"{token}.thumbprint")
    # Left behind: the include line. Even once its snippet is gone (say, a clean-up of the
    # panel's data directory), nginx -t still passes.
    for snippet_dir in (readable_dir / "challenges").glob("config-*/present-*/"):
        shutil.rmtree(snippet_dir)
    assert tree_digest(config.parent) != before and nginx_accepts(config)

    issued = wait_for_status(stack, request_certificate(stack, "http-01-nginx", config, SHOP), "valid")

    assert issued["order"]["status"] == "valid", issued
    assert tree_digest(config.parent) == before
    assert nginx_accepts(config)
    assert left_in(readable_dir / "challenges") == []
    assert http_get(LOOPBACK, pebble.http_port, *blog_challenge) == (200, "blog\n")


def waiting_for(lock: Path) -> int:
    """How many processes wait to take the flock on `lock` (/proc/locks marks a waiter "->")."""
    st = lock.stat()
    file_id = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    return sum(1 for line in Path("/proc/locks").read_text().splitlines()
               if " -> " in line and line.split()[-3] == file_id)


def test_two_orders_on_one_config_presented_at_once_both_validate_and_leave_it_as_it_was(
        stack, hand_made_nginx, readable_dir):
    config, access_log = hand_made_nginx
    before = tree_digest(config.parent)
    names = [SHOP, ["blog.example.test"]]  # two server blocks in one file
    # Both orders reach their presentation while the test holds the config's lock, so both
    # present the moment it is released.
    lock = config_edit._config_dir(readable_dir / "challenges", config) / "lock"
    with file_lock(lock):
        cert_ids = [request_certificate(stack, "http-01-nginx", config, domains) for domains in names]
        wait_until(lambda: waiting_for(lock) == 2, 60, "both orders to wait for the config")
        assert tree_digest(config.parent) == before

    issued = [wait_for_status(stack, cert_id, "valid") for cert_id in cert_ids]

    assert [certificate["order"]["status"] for certificate in issued] == ["valid", "valid"], issued
    assert tree_digest(config.parent) == before
    assert nginx_accepts(config)
    assert left_in(readable_dir / "challenges") == []
    assert len(challenges_answered(access_log)) >= 3, access_log.read_text()
