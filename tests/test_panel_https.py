"""The panel's own HTTPS: its vhost (rendered, and served by a real private nginx), its domain
(the page and the command), and the settings that follow from CERTPANEL_PANEL_PORT."""

import datetime
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import ProtectedError
from django.test import Client

from certs.models import AcmeAccount, Certificate, CertificateVersion
from panel.deployment import dispatch
from panel.deployment.nginx import apply, panel_vhost
from panel.deployment.nginx.render import CertificateFiles, Layout
from panel.models import PanelHttps, Site
from tests.support.ports import free_port, wait_for_port
from tests.support.process import ManagedProcess
from tests.support.tls import certificate_names, tls_peer_certificate
from tests.support.private_nginx import use_private_nginx

REPO_ROOT = Path(__file__).resolve().parent.parent


def layout(tmp_path, **fields):
    return Layout(vhost_dir=tmp_path / "sites", challenge_dir=tmp_path / "challenges", http_port=8080,
                  https_port=8443, listen_address="127.0.0.1", **fields)


def test_the_vhost_proxies_the_panel_port_to_gunicorn_with_the_forwarded_headers(tmp_path):
    files = CertificateFiles(fullchain=Path("/d/full.pem"), key=Path("/d/key.pem"))
    text = panel_vhost.render_panel_vhost(layout(tmp_path), 8888, "127.0.0.1:8000", "", files)
    assert "listen 127.0.0.1:8888 ssl;" in text
    assert "proxy_pass http://127.0.0.1:8000;" in text
    assert "ssl_certificate /d/full.pem;" in text and "ssl_certificate_key /d/key.pem;" in text
    for header in ("Host $http_host", "X-Forwarded-Proto https", "X-Forwarded-For $remote_addr",
                   "X-Forwarded-Host $http_host"):
        assert f"proxy_set_header {header};" in text
    assert "acme-challenge" not in text  # no domain: nothing on the HTTP port


def test_with_a_domain_the_http_port_answers_its_challenges_and_sends_the_rest_to_the_panel(tmp_path):
    files = CertificateFiles(fullchain=Path("/d/full.pem"), key=Path("/d/key.pem"))
    text = panel_vhost.render_panel_vhost(layout(tmp_path), 8888, "unix:/run/certpanel/web.sock", "panel.example.com",
                                          files)
    assert "proxy_pass http://unix:/run/certpanel/web.sock:;" in text
    http_block = text[text.index("listen 127.0.0.1:8080;"):]
    assert "server_name panel.example.com;" in http_block
    assert f"include {tmp_path / 'sites' / 'snippets'}/acme-challenge.inc;" in http_block
    assert "return 301 https://$host:8888$request_uri;" in http_block
    on_443 = panel_vhost.render_panel_vhost(layout(tmp_path), 443, "127.0.0.1:8000", "panel.example.com", files)
    assert "return 301 https://$host$request_uri;" in on_443


def test_the_self_signed_certificate_is_made_once_with_a_private_key(settings, tmp_path):
    settings.CERT_DEPLOY_DIR = tmp_path
    files = panel_vhost.ensure_self_signed()
    assert oct(files.key.stat().st_mode & 0o777) == "0o600"
    first = files.fullchain.read_text()
    assert panel_vhost.ensure_self_signed() == files and files.fullchain.read_text() == first


@pytest.mark.parametrize("upstream, ok", [
    ("127.0.0.1:8000", True), ("[::1]:8000", True), ("localhost:8000", True), ("unix:/run/certpanel/web.sock", True),
    ("10.0.0.5:8000", False), ("0.0.0.0:8000", False), ("127.0.0.1", False), ("example.com:80", False),
])
def test_only_a_local_upstream_is_accepted(upstream, ok):
    from panel.settings import _local_upstream  # the settings module's own check
    assert _local_upstream(upstream) is ok


# --- against a real nginx


def make_chain(domain):
    """(key PEM, leaf PEM, intermediate PEM) of a little test CA."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("Test CA")).issuer_name(name("Test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now)
          .not_valid_after(now + datetime.timedelta(days=365)).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name(domain)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, leaf, ca.public_bytes(serialization.Encoding.PEM).decode()


def issued_certificate(owner, domain):
    account = AcmeAccount.objects.create(owner=owner, directory_url="https://ca.example/dir", account_key="unused",
                                         account_url="https://ca.example/acct/1")
    cert = Certificate.objects.create(owner=owner, account=account, domains=[domain], status="valid")
    key_pem, leaf, ca_pem = make_chain(domain)
    leaf_pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
    cert.current_version = CertificateVersion.objects.create(
        certificate=cert, cert_pem=leaf_pem, chain_pem=leaf_pem + ca_pem, private_key=key_pem,
        serial=format(leaf.serial_number, "x"), issuer="CN=Test CA", not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc)
    cert.save()
    return cert


class EchoUpstream:
    """What gunicorn would be: answers every GET with the request's headers as JSON."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps(dict(self.headers)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.server.server_port}"


@pytest.fixture
def nginx(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path / "data"
    use_private_nginx(settings, tmp_path)
    settings.PANEL_PORT = free_port()
    upstream = EchoUpstream()
    settings.PANEL_UPSTREAM = upstream.address
    monkeypatch.setattr(apply, "request_reload", apply.reload_now)  # no worker here: reload at once
    apply.write_private_main_config()
    assert panel_vhost.install(reload=False) == (True, "")
    process = ManagedProcess("nginx", apply.nginx_command("-g", "daemon off;"), tmp_path / "nginx.log").start()
    wait_for_port(settings.PANEL_PORT)
    yield settings
    process.stop()
    upstream.server.shutdown()


def panel_get(settings, path="/"):
    return requests.get(f"https://127.0.0.1:{settings.PANEL_PORT}{path}", verify=False, timeout=5)


def wait_for_serial(settings, serial, timeout=10.0):
    import time  # noqa: PLC0415 - only this helper waits
    deadline = time.monotonic() + timeout
    while True:
        served = tls_peer_certificate("127.0.0.1", settings.PANEL_PORT, "panel.example.com")
        if served.serial_number == serial or time.monotonic() > deadline:
            return served
        time.sleep(0.1)


@pytest.mark.django_db
def test_nginx_serves_the_panel_self_signed_then_with_its_certificate_without_a_restart(nginx, alice):
    served = tls_peer_certificate("127.0.0.1", nginx.PANEL_PORT, None)
    assert "self-signed" in served.subject.rfc4514_string()
    echoed = panel_get(nginx).json()
    assert echoed["X-Forwarded-Proto"] == "https"
    assert echoed["Host"] == f"127.0.0.1:{nginx.PANEL_PORT}"  # with the port: Django's CSRF origin check needs it
    plain = requests.get(f"http://127.0.0.1:{nginx.PANEL_PORT}/login/", timeout=5, allow_redirects=False)
    assert plain.status_code == 301 and plain.headers["Location"] == f"https://127.0.0.1:{nginx.PANEL_PORT}/login/"

    cert = issued_certificate(alice, "panel.example.com")
    PanelHttps.objects.create(pk=1, domain="panel.example.com", certificate=cert)
    assert dispatch.deploy_panel_vhost()
    leaf = x509.load_pem_x509_certificate(cert.current_version.cert_pem.encode())
    served = wait_for_serial(nginx, leaf.serial_number)
    assert served.serial_number == leaf.serial_number and certificate_names(served) == ["panel.example.com"]
    key = Path(apply.certificate_files(cert.current_version).key)
    assert oct(key.stat().st_mode & 0o777) == "0o600"

    # The domain answers HTTP-01 on the HTTP port (administrators' tokens sit in the challenge
    # directory itself), and sends everything else to the panel's port.
    Path(nginx.ACME_CHALLENGE_DIR, "tok-123").write_text("tok-123.thumbprint")
    http = f"http://127.0.0.1:{nginx.NGINX_HTTP_PORT}"
    answer = requests.get(f"{http}/.well-known/acme-challenge/tok-123", headers={"Host": "panel.example.com"},
                          timeout=5)
    assert answer.status_code == 200 and answer.text == "tok-123.thumbprint"
    # An old nginx worker may still answer a moment after the reload (then with the default server's 404).
    deadline = time.monotonic() + 5
    while (other := requests.get(f"{http}/login/", headers={"Host": "panel.example.com"}, timeout=5,
                                 allow_redirects=False)).status_code != 301 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert other.status_code == 301
    assert other.headers["Location"] == f"https://panel.example.com:{nginx.PANEL_PORT}/login/"

    # Revoked: back to the self-signed certificate rather than serve a revoked one.
    CertificateVersion.objects.filter(pk=cert.current_version_id).update(revoked_at=datetime.datetime.now(
        datetime.timezone.utc))
    assert dispatch.deploy_panel_vhost()
    assert "self-signed" in wait_for_serial(nginx, -1, timeout=3).subject.rfc4514_string()


@pytest.mark.django_db
def test_beat_puts_a_lost_update_of_the_vhost_right(nginx, alice, monkeypatch):
    queued = mock.Mock()
    monkeypatch.setattr(dispatch, "APPLY_PANEL_VHOST", queued)
    assert not dispatch.resume_panel_vhost()  # as it should be: nothing to do
    PanelHttps.objects.create(pk=1, domain="panel.example.com", certificate=issued_certificate(alice,
                                                                                               "panel.example.com"))
    assert dispatch.resume_panel_vhost() and queued.delay.called  # its task was lost
    dispatch.deploy_panel_vhost()
    assert panel_vhost.is_current()


@pytest.mark.django_db
def test_a_vhost_nginx_refuses_leaves_the_previous_one_serving(nginx, alice):
    before = panel_vhost.config_path(apply.layout()).read_text()
    nginx.PANEL_UPSTREAM = "127.0.0.1:99999"  # not a port: nginx -t refuses it
    ok, output = panel_vhost.install()
    assert not ok and "99999" in output
    assert panel_vhost.config_path(apply.layout()).read_text() == before
    assert panel_get(nginx).status_code == 200


# --- the panel's domain: pipeline, page, command


@pytest.fixture
def admin(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def panel_port(settings):
    settings.PANEL_PORT = 8888
    return settings


@pytest.fixture
def ca(monkeypatch):
    """The CA registers anyone at once; the queue is there; nothing reaches Celery."""
    monkeypatch.setattr("certs.accounts.AcmeClient.register", lambda self, *args: "https://ca.example/acct/9")
    with mock.patch("certs.orders.enqueue") as enqueue, \
            mock.patch("panel.deployment.dispatch.APPLY_PANEL_VHOST") as apply_panel, \
            mock.patch("panel.toolkit.task_queue.require_reachable"):
        yield mock.Mock(enqueue=enqueue, apply_panel=apply_panel)


def test_an_admin_sets_the_domain_and_the_panel_orders_its_certificate(admin, panel_port, ca,
                                                                        django_capture_on_commit_callbacks):
    client = Client()
    client.force_login(admin)
    page = client.get("/settings/panel-https/")
    assert page.status_code == 200 and b"self-signed" in page.content
    assert b'href="/settings/panel-https/"' in page.content  # in the navigation
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/settings/panel-https/", {"domain": "Panel.Example.com"})
    assert response.status_code == 302
    row = PanelHttps.load()
    assert row.domain == "panel.example.com"
    cert = row.certificate
    assert cert.owner == admin and cert.domains == ["panel.example.com"] and cert.challenge == "http-01"
    assert cert.site is None and cert.account.directory_url.startswith("https://acme-v02.api.letsencrypt.org")
    assert ca.enqueue.called  # its first order
    assert ca.apply_panel.delay.called  # the vhost now answers HTTP-01 for the name

    # A new version is put in service on the panel's vhost, as a site's would be on the site.
    ca.apply_panel.reset_mock()
    with django_capture_on_commit_callbacks(execute=True):
        dispatch.put_in_service(cert)
    assert ca.apply_panel.delay.called

    # No site may take the name: its HTTP-01 and its port-80 server are the panel's.
    taken = client.post("/sites/add/", {"domains": "panel.example.com", "root": ""})
    assert b"the panel&#x27;s own domain" in taken.content and not Site.objects.exists()

    # It cannot be deleted while it serves the panel.
    with pytest.raises(ProtectedError):
        cert.delete()


def test_a_site_name_or_a_panel_without_its_port_gets_no_domain(admin, settings, ca):
    client = Client()
    client.force_login(admin)
    settings.PANEL_PORT = 0
    response = client.post("/settings/panel-https/", {"domain": "panel.example.com"})
    assert b"CERTPANEL_PANEL_PORT" in response.content and not PanelHttps.objects.exists()
    settings.PANEL_PORT = 8888
    site = Site.objects.create(owner=admin, domains=["shop.example.com"], root="/srv/www/shop")
    site.domain_index.create(name="shop.example.com")
    response = client.post("/settings/panel-https/", {"domain": "shop.example.com"})
    assert response.status_code == 200 and b"is a name of a site" in response.content
    assert not PanelHttps.objects.exists()


def test_the_page_is_for_administrators_only(alice_client):
    assert alice_client.get("/settings/panel-https/").status_code == 403
    assert alice_client.post("/settings/panel-https/", {"domain": "x.example.com"}).status_code == 403
    assert alice_client.post("/settings/panel-https/clear/").status_code == 403
    assert b"panel-https" not in alice_client.get("/dashboard/").content


def test_the_command_sets_and_clears_the_domain(admin, panel_port, ca, capsys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("panel_domain", "panel.example.com")
    first = PanelHttps.load().certificate
    assert first.owner == admin and "being ordered" in capsys.readouterr().out
    with django_capture_on_commit_callbacks(execute=True):
        call_command("panel_domain", "other.example.com")
    row = PanelHttps.load()
    assert row.certificate.domains == ["other.example.com"]
    first.refresh_from_db()
    assert first.renewal_stopped  # the old name no longer answers HTTP-01: it stops renewing
    with django_capture_on_commit_callbacks(execute=True):
        call_command("panel_domain", "--clear")
    row = PanelHttps.load()
    assert row.domain == "" and row.certificate is None and row.serving_version() is None
    with pytest.raises(CommandError, match="wildcard|not a valid|domain"):
        call_command("panel_domain", "*.example.com")


def test_the_initial_domain_is_set_once(admin, panel_port, ca, settings, django_capture_on_commit_callbacks):
    settings.PANEL_DOMAIN = "panel.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        call_command("panel_domain")
    assert PanelHttps.load().domain == "panel.example.com"
    call_command("panel_domain", "--clear")
    call_command("panel_domain")  # cleared by an administrator: not set again
    assert PanelHttps.load().domain == ""


# --- settings that follow from the panel port


def settings_with(env):
    code = ("import json; from django.conf import settings as s; print(json.dumps([s.SECURE_COOKIES, "
            "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, getattr(s, 'SECURE_PROXY_SSL_HEADER', None), "
            "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, [str(n) for n in s.TRUSTED_PROXIES]]))")
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "panel.settings", **env}
    result = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=REPO_ROOT,
                            env=environ, capture_output=True, text=True, timeout=60)
    return result.returncode, (json.loads(result.stdout.splitlines()[-1]) if result.returncode == 0
                               else result.stderr)


def test_the_panel_port_turns_on_secure_cookies_hsts_and_the_proxy_header():
    assert settings_with({"CERTPANEL_PANEL_PORT": ""}) == (0, [False, False, False, None, 0, False, []])
    code, values = settings_with({"CERTPANEL_PANEL_PORT": "8888", "CERTPANEL_PANEL_UPSTREAM": "unix:/run/c/web.sock"})
    assert code == 0
    assert values[:6] == [True, True, True, ["HTTP_X_FORWARDED_PROTO", "https"], 31536000, False]
    assert values[6] == ["127.0.0.0/8", "::1/128"]
    code, error = settings_with({"CERTPANEL_PANEL_PORT": "8888", "CERTPANEL_PANEL_UPSTREAM": "10.0.0.5:8000"})
    assert code != 0 and "CERTPANEL_PANEL_UPSTREAM" in error


@pytest.fixture
def behind_panel_port(settings):
    """As panel.settings makes it with CERTPANEL_PANEL_PORT set (checked above)."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    return settings


def test_csrf_accepts_the_panel_port_origin_without_trusted_origins(behind_panel_port, alice):
    assert not behind_panel_port.CSRF_TRUSTED_ORIGINS
    client = Client(enforce_csrf_checks=True, HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="panel.example.com:8888")
    page = client.get("/login/")
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert page.cookies["csrftoken"]["secure"]
    token = page.cookies["csrftoken"].value
    form = {"username": "alice", "password": "pw-alice-123", "csrfmiddlewaretoken": token}
    refused = client.post("/login/", form, HTTP_ORIGIN="https://evil.example.com:8888")
    assert refused.status_code == 403
    logged_in = client.post("/login/", form, HTTP_ORIGIN="https://panel.example.com:8888")
    assert logged_in.status_code == 302
    assert logged_in.cookies["sessionid"]["secure"]


def test_before_the_first_migrate_the_vhost_is_self_signed(settings, tmp_path, monkeypatch):
    """The installer writes nginx's configuration before it migrates."""
    from django.db import OperationalError  # noqa: PLC0415 - this test's own

    def no_table():
        raise OperationalError("no such table: panel_panelhttps")

    settings.PANEL_PORT, settings.CERT_DEPLOY_DIR = 8888, tmp_path
    monkeypatch.setattr(PanelHttps, "load", no_table)
    text = panel_vhost.preview()
    assert f"ssl_certificate {tmp_path}/panel-self-signed/self-signed.pem;" in text and "acme-challenge" not in text


def test_the_page_reads_in_chinese(admin, panel_port):
    client = Client(headers={"accept-language": "zh-CN,zh;q=0.9"})
    client.force_login(admin)
    text = client.get("/settings/panel-https/").content.decode()
    for chinese in ("面板 HTTPS", "自签名证书", "面板域名", "保存并申请证书", "安全入口"):
        assert chinese in text
    assert "self-signed certificate (browsers" not in text and "Save and order" not in text
