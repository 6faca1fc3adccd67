"""How a real (private) nginx serves the sites' certificates: read at each handshake from one
file per site, picked by the name asked for, so a renewal needs no reload; a name no site claims
gets the fallback certificate; a missing or unusable file fails that site alone, and the panel
says so; a reload nginx refuses takes down only the site at fault."""

import ssl

import pytest
import requests
from cryptography import x509

from panel.deployment.nginx import apply
from panel.deployment.nginx.render import render_system_include
from panel.models import Site
from tests.support.private_nginx import use_private_nginx
from tests.support.tls import tls_peer_certificate
from tests.test_nginx_apply import make_site, nginx, serves  # noqa: F401 (nginx: a fixture)
from tests.test_versions import add_version, make_certificate


@pytest.fixture
def reloads(nginx, monkeypatch):
    """The reloads applies ask for (each is run at once), and those nginx logged."""
    asked = []

    def reload():
        asked.append(1)
        apply.reload_now()

    monkeypatch.setattr(apply, "request_reload", reload)

    def logged():
        return apply.error_log().read_text().count("reconfiguring")

    reload.asked, reload.logged = asked, logged
    return reload


def serial(version):
    return x509.load_pem_x509_certificate(version.cert_pem.encode()).serial_number


def served(settings, name):
    return tls_peer_certificate("127.0.0.1", settings.NGINX_HTTPS_PORT, name)


def https_site(tmp_path, name):
    site = make_site(tmp_path, name)
    certificate = make_certificate(site.owner, [name], site=site)
    return site, certificate


@pytest.mark.django_db
def test_a_renewed_certificate_is_served_at_the_next_handshake_without_a_reload(nginx, tmp_path, reloads):
    site, certificate = https_site(tmp_path, "renew.example.com")
    assert apply.apply_site_config(site).ok
    assert served(nginx, "renew.example.com").serial_number == serial(certificate.current_version)
    asked, logged = len(reloads.asked), reloads.logged()

    renewed = add_version(certificate)
    applied = apply.apply_site_config(site)
    assert applied.ok and applied.version == renewed
    assert served(nginx, "renew.example.com").serial_number == serial(renewed)  # at once: no reload to wait for
    assert (len(reloads.asked), reloads.logged()) == (asked, logged)
    assert Site.objects.get(pk=site.pk).config_status == Site.ConfigStatus.APPLIED


@pytest.mark.django_db
def test_a_name_no_site_claims_gets_the_fallback_certificate_and_421(nginx, tmp_path, reloads):
    site, _certificate = https_site(tmp_path, "known.example.com")
    assert apply.apply_site_config(site).ok
    fallback = served(nginx, "unknown.example.com")
    assert fallback.subject.rfc4514_string() == "CN=CertPanel: no site has this name"
    answer = requests.get(f"https://127.0.0.1:{nginx.NGINX_HTTPS_PORT}/", headers={"Host": "unknown.example.com"},
                          verify=False, timeout=5)
    assert answer.status_code == 421


@pytest.mark.django_db
def test_a_missing_certificate_file_fails_that_sites_handshake_alone_and_the_site_says_so(nginx, tmp_path, reloads):
    gone, gone_certificate = https_site(tmp_path, "gone.example.com")
    kept, kept_certificate = https_site(tmp_path, "kept.example.com")
    assert apply.apply_site_config(gone).ok and apply.apply_site_config(kept).ok
    path = apply.layout().served_certificate(gone)
    path.unlink()

    with pytest.raises(ssl.SSLError):
        served(nginx, "gone.example.com")
    assert served(nginx, "kept.example.com").serial_number == serial(kept_certificate.current_version)
    assert f'cannot load certificate "{path}"' in apply.error_log().read_text()  # nginx says which file

    assert apply.check_served_certificates() == [gone.pk]
    gone.refresh_from_db()
    assert gone.config_status == Site.ConfigStatus.FAILED
    assert gone.config_failure["message"] == apply.SERVED_FILE_BROKEN and str(path) in gone.config_error
    assert Site.objects.get(pk=kept.pk).config_status == Site.ConfigStatus.APPLIED

    assert apply.apply_site_config(gone).ok  # applying it again writes the file back
    assert served(nginx, "gone.example.com").serial_number == serial(gone_certificate.current_version)
    assert apply.check_served_certificates() == []


@pytest.mark.django_db
def test_a_key_that_does_not_belong_to_the_certificate_is_never_given_to_nginx(nginx, tmp_path, reloads):
    site, certificate = https_site(tmp_path, "pair.example.com")
    assert apply.apply_site_config(site).ok
    before = certificate.current_version
    broken = add_version(certificate)
    type(broken).objects.filter(pk=broken.pk).update(private_key=add_version(certificate, current=False).private_key)

    applied = apply.apply_site_config(site)
    assert applied.ok is False and "does not belong" in applied.error
    site.refresh_from_db()
    assert site.config_failure["message"] == apply.CERTIFICATE_UNUSABLE
    assert served(nginx, "pair.example.com").serial_number == serial(before)  # the previous one, still served


@pytest.mark.django_db
def test_a_reload_nginx_refuses_takes_down_only_the_site_at_fault(nginx, tmp_path, reloads):
    good, good_certificate = https_site(tmp_path, "good.example.com")
    bad = make_site(tmp_path, "bad.example.com")
    assert apply.apply_site_config(good).ok and apply.apply_site_config(bad).ok
    # What only the whole configuration shows, or a file changed behind the panel's back.
    vhost = nginx.NGINX_VHOST_DIR / bad.config_name
    vhost.write_text(vhost.read_text().replace("server_name", "no_such_directive", 1))
    late = make_site(tmp_path, "late.example.com")

    assert apply.apply_site_config(late).ok  # tested alone: sound; the reload then refuses the whole
    assert not vhost.exists()
    bad.refresh_from_db()
    assert bad.config_status == Site.ConfigStatus.FAILED and bad.config_failure["message"] == apply.TAKEN_DOWN
    assert "no_such_directive" in bad.config_error
    assert serves(nginx, "late.example.com", "this is late.example.com")
    assert served(nginx, "good.example.com").serial_number == serial(good_certificate.current_version)
    assert Site.objects.get(pk=good.pk).config_status == Site.ConfigStatus.APPLIED


@pytest.mark.django_db
def test_a_first_certificate_is_served_and_https_forced_without_a_reload(nginx, tmp_path, reloads):
    site = make_site(tmp_path, "first.example.com", force_https=True)
    assert apply.apply_site_config(site).ok
    http = f"http://127.0.0.1:{nginx.NGINX_HTTP_PORT}"
    assert serves(nginx, "first.example.com", "this is first.example.com")  # no certificate: no redirect yet
    assert served(nginx, "first.example.com").subject.rfc4514_string() == "CN=CertPanel: no site has this name"
    asked, logged = len(reloads.asked), reloads.logged()

    certificate = make_certificate(site.owner, ["first.example.com"], site=site)
    assert apply.apply_site_config(site).ok
    assert served(nginx, "first.example.com").serial_number == serial(certificate.current_version)
    moved = requests.get(f"{http}/page?x=1", headers={"Host": "first.example.com"}, allow_redirects=False, timeout=5)
    assert moved.status_code == 301
    assert moved.headers["Location"] == f"https://first.example.com:{nginx.NGINX_HTTPS_PORT}/page?x=1"
    challenge = requests.get(f"{http}/.well-known/acme-challenge/token-1", headers={"Host": "first.example.com"},
                             allow_redirects=False, timeout=5)
    assert challenge.status_code == 404  # HTTP-01 stays on HTTP
    secure = requests.get(f"https://127.0.0.1:{nginx.NGINX_HTTPS_PORT}/", headers={"Host": "first.example.com"},
                          allow_redirects=False, verify=False, timeout=5)
    assert secure.status_code == 200 and "this is first.example.com" in secure.text  # HTTPS itself is not redirected
    assert (len(reloads.asked), reloads.logged()) == (asked, logged)

    # Its certificate gone (deleted, revoked): the fallback again, and no redirect to it.
    certificate.delete()
    assert apply.apply_site_config(site).ok
    assert served(nginx, "first.example.com").subject.rfc4514_string() == "CN=CertPanel: no site has this name"
    assert serves(nginx, "first.example.com", "this is first.example.com")
    assert (len(reloads.asked), reloads.logged()) == (asked, logged)


@pytest.fixture
def system_nginx(settings, tmp_path, monkeypatch):
    """The panel's settings for a system nginx (NGINX_CONF set): a Debian-like nginx.conf whose
    http block defines a limit_req zone and includes the panel's conf.d file. Only tested
    (nginx -t), never started."""
    use_private_nginx(settings, tmp_path)
    settings.NGINX_PRIVATE = False
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    monkeypatch.setattr(apply, "request_reload", lambda: None)
    include = tmp_path / "conf.d" / "certpanel.conf"
    include.parent.mkdir()
    include.write_text(render_system_include(apply.layout()))
    settings.NGINX_CONF.parent.mkdir(parents=True)
    settings.NGINX_CONF.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
                                   "http {\n    limit_req_zone $binary_remote_addr zone=admins_zone:1m rate=1r/s;\n"
                                   f"    include {include};\n}}\n")
    return settings


@pytest.mark.django_db
def test_with_the_system_nginx_a_site_is_tested_alone_and_the_whole_config_decides_what_it_cannot(system_nginx,
                                                                                                  tmp_path):
    site = make_site(tmp_path, "sys.example.com")
    assert apply.apply_site_config(site).ok
    minimal = (apply.layout().snippets_dir / apply.MINIMAL_TEST_CONFIG).read_text()
    assert site.config_name in minimal and "limit_req_zone" not in minimal  # this site, without the admin's http settings

    custom = apply.layout().custom_dir(site)  # made by the first apply
    (custom / "limit.conf").write_text("limit_req zone=admins_zone;\n")  # defined in nginx.conf only
    assert apply.apply_site_config(site).ok, Site.objects.get(pk=site.pk).config_error

    (custom / "typo.conf").write_text("limit_req_typo on;\n")
    assert apply.apply_site_config(site).ok is False
    site.refresh_from_db()
    assert "limit_req_typo" in site.config_error and f"{custom}/typo.conf" in site.config_error


@pytest.mark.django_db
def test_when_nginx_keeps_its_own_default_site_each_site_holds_its_tls_context(system_nginx, tmp_path):
    system_nginx.NGINX_SHARED_TLS = False  # CERTPANEL_KEEP_NGINX_CONFIG
    include = tmp_path / "conf.d" / "certpanel.conf"
    include.write_text(render_system_include(apply.layout()))
    assert "default_server" not in include.read_text()
    site = make_site(tmp_path, "own.example.com")
    make_certificate(site.owner, ["own.example.com"], site=site)
    assert apply.apply_site_config(site).ok, Site.objects.get(pk=site.pk).config_error
    vhost = (system_nginx.NGINX_VHOST_DIR / site.config_name).read_text()
    assert "ssl_certificate_key $certpanel_certificate;" in vhost and "tls-intermediate.inc" in vhost
    assert apply.test_config()[0]  # the whole configuration: the site is the 443 socket's default, with a certificate


@pytest.mark.django_db
def test_hsts_is_sent_over_https_only(nginx, tmp_path, reloads):
    site, _certificate = https_site(tmp_path, "hsts.example.com")
    site.hsts = True
    site.save()
    assert apply.apply_site_config(site).ok
    secure = requests.get(f"https://127.0.0.1:{nginx.NGINX_HTTPS_PORT}/", headers={"Host": "hsts.example.com"},
                          verify=False, timeout=5)
    assert secure.headers["Strict-Transport-Security"] == "max-age=63072000"
    plain = requests.get(f"http://127.0.0.1:{nginx.NGINX_HTTP_PORT}/", headers={"Host": "hsts.example.com"}, timeout=5)
    assert plain.status_code == 200 and "Strict-Transport-Security" not in plain.headers
