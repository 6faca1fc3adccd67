"""Managed vhosts listen on IPv4 and IPv6, or one of them (NGINX_LISTEN_FAMILIES), on every address
of each family or on the addresses NGINX_LISTEN_ADDRESS names; checked on the rendered text, by
the settings' validation, and by a real nginx serving over 127.0.0.1 and ::1."""

import datetime
import re
import socket

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured

from panel import embedded
from panel.deployment.nginx import apply
from panel.deployment.nginx.render import Layout, render_names, render_private_main, render_site
from panel.management.commands import runpanel
from panel.models import Site
from panel.toolkit.config import LISTEN_FAMILIES, LOOPBACK, Env
from tests.support.ports import free_port, wait_for_port
from tests.support.tls import tls_peer_certificate
from tests.support.process import ManagedProcess
from tests.support.private_nginx import use_private_nginx

NAME = "v6.example.com"


def layout(tmp_path, families="both", address="", http2_directive=True):
    return Layout(vhost_dir=tmp_path / "sites", challenge_dir=tmp_path / "challenges", http_port=80, https_port=443,
                  listen_address=address, listen_families=families, http2_directive=http2_directive)


def listen_lines(config):
    return [line.strip() for line in config.splitlines() if line.strip().startswith("listen ")]


def a_site(**fields):
    return Site(pk=7, owner=get_user_model()(username="owner"), domains=[NAME], root="/srv/www/v6", **fields)




@pytest.mark.parametrize("families, expected", [
    ("both", ["listen 80;", "listen [::]:80;", "listen 443 ssl;", "listen [::]:443 ssl;"]),
    ("ipv4", ["listen 80;", "listen 443 ssl;"]),
    ("ipv6", ["listen [::]:80;", "listen [::]:443 ssl;"]),
])
def test_each_families_setting_gives_a_listen_line_per_family_on_every_address(tmp_path, families, expected):
    assert listen_lines(render_site(a_site(), layout(tmp_path, families))) == expected


def test_named_addresses_are_listened_on_exactly(tmp_path):
    config = render_site(a_site(), layout(tmp_path, address="127.0.0.1,::1"))
    assert listen_lines(config) == ["listen 127.0.0.1:80;", "listen [::1]:80;",
                                    "listen 127.0.0.1:443 ssl;", "listen [::1]:443 ssl;"]
    one = render_site(a_site(), layout(tmp_path, address="2001:db8::10"))
    assert listen_lines(one) == ["listen [2001:db8::10]:80;", "listen [2001:db8::10]:443 ssl;"]


def test_the_http2_flag_of_an_older_nginx_is_on_every_https_line(tmp_path):
    config = render_site(a_site(http2=True), layout(tmp_path, http2_directive=False))
    assert listen_lines(config)[2:] == ["listen 443 ssl http2;", "listen [::]:443 ssl http2;"]


def test_the_private_nginx_default_servers_cover_every_address(tmp_path):
    config = render_private_main(layout(tmp_path, address="127.0.0.1,::1"), tmp_path, tmp_path / "nginx.pid")
    assert listen_lines(config) == ["listen 127.0.0.1:80 default_server;", "listen [::1]:80 default_server;",
                                    "listen 127.0.0.1:443 ssl default_server;",
                                    "listen [::1]:443 ssl default_server;"]


def test_the_listen_addresses_are_there_for_other_server_blocks(tmp_path):
    assert layout(tmp_path).listen_addresses(8888) == ["8888", "[::]:8888"]
    assert layout(tmp_path, "ipv6").listen_hosts() == ["::"]
    assert layout(tmp_path, address="[::1]").listen_addresses(8888) == ["[::1]:8888"]


# --- the settings


def read(environ):
    env = Env(environ)
    families = env.choice("NGINX_LISTEN_FAMILIES", "both", LISTEN_FAMILIES)
    address = env.listen_addresses("NGINX_LISTEN_ADDRESS", families, "NGINX_LISTEN_FAMILIES")
    return env, families, address


def test_the_settings_take_the_families_and_addresses_as_documented():
    assert read({})[1:] == ("both", "")
    assert read({"NGINX_LISTEN_FAMILIES": "IPv6", "NGINX_LISTEN_ADDRESS": "[2001:DB8::1], ::1"})[1:] == (
        "ipv6", "2001:db8::1,::1")
    assert read({"NGINX_LISTEN_FAMILIES": "ipv4", "NGINX_LISTEN_ADDRESS": "192.0.2.1"})[1:] == ("ipv4", "192.0.2.1")


@pytest.mark.parametrize("environ, problem", [
    ({"NGINX_LISTEN_FAMILIES": "v6"}, "NGINX_LISTEN_FAMILIES='v6': expected one of both, ipv4, ipv6"),
    ({"NGINX_LISTEN_ADDRESS": "localhost"}, "NGINX_LISTEN_ADDRESS: 'localhost' is not an IP address"),
    ({"NGINX_LISTEN_FAMILIES": "ipv4", "NGINX_LISTEN_ADDRESS": "::1"},
     "NGINX_LISTEN_ADDRESS: ::1 is an IPv6 address, but NGINX_LISTEN_FAMILIES=ipv4 leaves IPv6 out"),
])
def test_a_bad_listen_setting_stops_the_start_and_says_what_to_fix(environ, problem):
    env = read(environ)[0]
    with pytest.raises(ImproperlyConfigured, match=re.escape(problem)):
        env.check()


# --- a real nginx


def self_signed(path):
    """A self-signed certificate for NAME, its key and itself in `path` (as nginx is given a site's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False).sign(key, hashes.SHA256()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    return cert


@pytest.fixture
def private_nginx(settings, tmp_path):
    """Writes the private nginx's config for settings.NGINX_LISTEN_* and a site with a
    certificate; start() runs nginx on it."""
    use_private_nginx(settings, tmp_path, listen_address=None)
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("served\n")
    processes = []

    def configure():
        apply.write_private_main_config()
        site = Site(pk=7, owner=get_user_model()(username="owner"), domains=[NAME], root=str(root))
        current = apply.layout()
        cert = self_signed(current.served_certificate(site))
        (settings.NGINX_VHOST_DIR / "site-7.conf").write_text(render_site(site, current))
        current.names_file(site).write_text(render_names(site, current))
        return cert

    def start():
        cert = configure()
        ok, output = apply.test_config()
        assert ok, output
        processes.append(ManagedProcess("nginx", apply.nginx_command("-g", "daemon off;"),
                                        tmp_path / "nginx.log").start())
        for host in apply.layout().listen_hosts():
            wait_for_port(settings.NGINX_HTTP_PORT, host)
        return cert

    configure.start = start
    yield configure
    for process in processes:
        process.stop()


def url_host(host):
    return f"[{host}]" if ":" in host else host


def answers(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("families", ["both", "ipv4", "ipv6"])
def test_nginx_serves_the_site_over_the_chosen_families_only(private_nginx, settings, families):
    settings.NGINX_LISTEN_FAMILIES = families
    settings.NGINX_LISTEN_ADDRESS = ",".join(LOOPBACK[family] for family in LISTEN_FAMILIES[families])
    cert = private_nginx.start()
    for family, host in LOOPBACK.items():
        if family in LISTEN_FAMILIES[families]:
            page = requests.get(f"http://{url_host(host)}:{settings.NGINX_HTTP_PORT}/", headers={"Host": NAME},
                                timeout=5)
            assert page.status_code == 200 and page.text == "served\n"
            assert tls_peer_certificate(host, settings.NGINX_HTTPS_PORT, NAME) == cert
        else:
            assert not answers(host, settings.NGINX_HTTP_PORT) and not answers(host, settings.NGINX_HTTPS_PORT)


@pytest.mark.parametrize("families", ["both", "ipv4", "ipv6"])
def test_nginx_accepts_the_config_for_every_address(private_nginx, settings, families):
    # Every address of a family (the system nginx's default): nginx -t checks it without binding.
    settings.NGINX_LISTEN_FAMILIES, settings.NGINX_LISTEN_ADDRESS = families, ""
    private_nginx()
    ok, output = apply.test_config()
    assert ok, output
    main = settings.NGINX_CONF.read_text()
    port = settings.NGINX_HTTP_PORT
    assert (f"listen {port} default_server;" in main) == (families != "ipv6")
    assert (f"listen [::]:{port} default_server;" in main) == (families != "ipv4")


def test_the_launcher_will_not_start_nginx_on_a_port_taken_on_ipv6(settings):
    holder = socket.socket(socket.AF_INET6)
    holder.bind(("::1", 0))
    holder.listen()
    settings.NGINX_PRIVATE, settings.NGINX_LISTEN_ADDRESS = True, "127.0.0.1,::1"
    settings.NGINX_HTTP_PORT, settings.NGINX_HTTPS_PORT = holder.getsockname()[1], free_port()
    try:
        with pytest.raises(embedded.StartupError,
                           match=re.escape(f"nginx: something already listens on [::1]:{settings.NGINX_HTTP_PORT}")):
            runpanel.Command().start_all(supervisor=None, host="127.0.0.1", port=free_port())
    finally:
        holder.close()


def test_the_launcher_binds_gunicorn_where_its_banner_points_whatever_nginx_listens_on(settings, monkeypatch):
    """`make run` prints http://127.0.0.1:8000/: gunicorn must bind there, not on the last of
    nginx's listen addresses (::1) the start-up walked through."""
    settings.NGINX_PRIVATE, settings.NGINX_LISTEN_ADDRESS = True, "127.0.0.1,::1"
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # no private Redis
    for name in ("write_private_main_config", "start_or_reload_system_nginx"):
        monkeypatch.setattr(runpanel, name, lambda: None)
    monkeypatch.setattr(runpanel, "test_config", lambda: (True, ""))
    monkeypatch.setattr(runpanel.Command, "write_panel_vhost", lambda self: None)
    monkeypatch.setattr(embedded, "port_answers", lambda *args, **kwargs: False)
    monkeypatch.setattr(embedded, "wait_for_port", lambda *args, **kwargs: None)
    started = {}

    class Recorder:
        def start(self, name, argv, **kwargs):
            started[name] = argv

    runpanel.Command().start_all(supervisor=Recorder(), host="127.0.0.1", port=8000)
    gunicorn = started["gunicorn"]
    assert gunicorn[gunicorn.index("--bind") + 1] == "127.0.0.1:8000"
