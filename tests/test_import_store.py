"""The importers' writer (certs/importers/store.py) and the import commands, fed `Found`
values built here: real X.509 certificates and keys (tests/test_upload.py's Pki), no reader,
no network. Nothing reaches Celery (tests/conftest.py `queued`)."""

import datetime
import io
import json
from unittest import mock

import josepy as jose
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from certs import accounts, importers
from certs.acme import AcmeClient
from certs.importers import store
from certs.importers.found import Found, FoundAccount, FoundCertificate, FoundInstall, Problem
from certs.models import AcmeAccount, Certificate, CertificateVersion, DnsCredential, InstallTarget, ReloadPreset
from certs.renewal import policy
from panel.models import Site
from tests.test_upload import Pki

PEBBLE = "https://127.0.0.1:14000/dir"
LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
CF_TOKEN = "cf-token-VERY-SECRET-0123456789"
RELOAD = "systemctl reload nginx && echo done"
MODELS = (AcmeAccount, Certificate, CertificateVersion, DnsCredential, InstallTarget, ReloadPreset)


def _key_pem(curve=ec.SECP256R1()):
    return ec.generate_private_key(curve).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def pki():
    return Pki()


@pytest.fixture
def admin(db):
    return get_user_model().objects.create_superuser("root", password="pw-root-123")


@pytest.fixture
def roots(settings, tmp_path):
    """Webroot, install and config directories the panel may use, and one it may not."""
    paths = {name: (tmp_path / name).resolve() for name in ("www", "install", "elsewhere")}
    for path in paths.values():
        path.mkdir()
    settings.WEBROOT_ROOTS = [paths["www"]]
    settings.INSTALL_ROOTS = [paths["install"]]
    return paths


class Home:
    """A Found like a reader returns, for any number of certificates on one account."""

    def __init__(self, pki, directory_url=PEBBLE):
        self.pki = pki
        self.account = FoundAccount(directory_url=directory_url, key_pem=_key_pem(),
                                    account_url=directory_url.replace("/dir", "/my-account/1"),
                                    email="ops@example.com", source="/home/ca/127.0.0.1/dir/account.key")
        self.certificates = []

    def webroot(self, roots, names, **extra):
        webroot = roots["www"] / names[0]
        webroot.mkdir(exist_ok=True)
        return self.add(names, challenge="http-01-webroot", webroot=str(webroot), **extra)

    def add(self, names, ends_in_days=80, **extra):
        leaf, key = self.pki.leaf(names, ends_in_days=ends_in_days)
        found = FoundCertificate(name=names[0], source=f"/home/{names[0]}/{names[0]}.conf", domains=list(names),
                                 key_type="ec256", cert_pem=leaf, chain_pem=self.pki.chain, key_pem=key,
                                 account=self.account, **extra)
        self.certificates.append(found)
        return found

    def found(self, **extra):
        return Found(client="acme.sh", root="/home", accounts=[self.account], certificates=self.certificates,
                     **extra)


def _counts():
    return {model.__name__: model.objects.count() for model in MODELS}


def _outcomes(report, kind=store.CERTIFICATE):
    return {item.label: item.outcome for item in report.items if item.kind == kind}


def test_it_creates_the_account_certificate_version_target_and_preset(admin, roots, pki, queued):
    home = Home(pki)
    renew_at = timezone.now() + datetime.timedelta(days=20)
    install = FoundInstall(key_path=str(roots["install"] / "a.key"), fullchain_path=str(roots["install"] / "a.pem"),
                           reload_command=RELOAD)
    found = home.webroot(roots, ["a.example.com", "www.a.example.com"], next_renewal_at=renew_at, install=install,
                         notes=[Problem("/home/a.example.com/a.example.com.conf", "Le_PreHook is not carried over",
                                        line=7)])

    report = store.import_found(home.found(), admin)

    account = AcmeAccount.objects.get()
    assert (account.owner, account.directory_url, account.account_url, account.email) == (
        admin, PEBBLE, "https://127.0.0.1:14000/my-account/1", "ops@example.com")
    assert account.account_key == home.account.key_pem  # the same key: no new registration
    cert = Certificate.objects.get()
    assert (cert.source, cert.status, cert.account, cert.challenge, cert.webroot, cert.key_type) == (
        "issued", "valid", account, "http-01-webroot", found.webroot, "ec256")
    assert cert.domains == ["a.example.com", "www.a.example.com"]
    assert cert.next_renewal_at == renew_at
    version = cert.current_version
    assert version.cert_pem == found.cert_pem and version.chain_pem == found.cert_pem + pki.chain
    assert version.private_key == found.key_pem
    assert version.issuer == "CN=Upload Test Intermediate"
    target = InstallTarget.objects.get()
    assert (target.certificate, target.key_path, target.fullchain_path, target.key_mode, target.cert_mode) == (
        cert, install.key_path, install.fullchain_path, 0o600, 0o644)
    assert target.reload_preset.command == ["/bin/sh", "-c", RELOAD]
    assert target.reload_preset.name == f"Imported: {RELOAD}"
    assert target.last_status == InstallTarget.Status.NEVER  # the files are already there: not run
    assert queued.enqueue.call_count == 0  # nothing ordered: the certificate is valid
    assert _outcomes(report) == {"a.example.com (a.example.com, www.a.example.com)": "created"}
    assert {item.kind: item.outcome for item in report.items} == {
        "certificate": "created", "account": "created", "reload preset": "created", "install target": "created"}
    text = report.as_text()
    assert "note: /home/a.example.com/a.example.com.conf:7: Le_PreHook is not carried over" in text
    assert "Certificates: 1 created" in text and not report.incomplete


def test_secrets_are_encrypted_at_rest_and_never_in_the_report(admin, pki, queued):
    home = Home(pki)
    home.add(["*.b.example.com", "b.example.com"], challenge="dns-01", dns_provider="cloudflare",
             dns_credentials={"auth_token": CF_TOKEN, "zone_id": "zone-1"}, dns_source="acme.sh dns_cf")

    report = store.import_found(home.found(), admin)

    credential = DnsCredential.objects.get()
    assert credential.values() == {"auth_token": CF_TOKEN, "zone_id": "zone-1"}
    assert credential.name == "acme.sh dns_cf (imported)"
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM certs_dnscredential")
        assert CF_TOKEN not in cursor.fetchone()[0]
        cursor.execute("SELECT private_key FROM certs_certificateversion")
        assert "PRIVATE KEY" not in cursor.fetchone()[0]
        cursor.execute("SELECT account_key FROM certs_acmeaccount")
        assert "PRIVATE KEY" not in cursor.fetchone()[0]
    text = report.as_text()
    assert "credentials (auth_token, zone_id) from acme.sh dns_cf" in text
    assert CF_TOKEN not in text and "PRIVATE KEY" not in text


def test_running_twice_creates_nothing_new(admin, roots, pki, queued):
    home = Home(pki)
    home.webroot(roots, ["a.example.com"], install=FoundInstall(cert_path=str(roots["install"] / "a.crt"),
                                                                reload_command=RELOAD))
    home.add(["*.b.example.com"], challenge="dns-01", dns_provider="cloudflare",
             dns_credentials={"auth_token": CF_TOKEN})
    first = store.import_found(home.found(), admin)
    counts = _counts()
    assert counts == {"AcmeAccount": 1, "Certificate": 2, "CertificateVersion": 2, "DnsCredential": 1,
                      "InstallTarget": 1, "ReloadPreset": 1}
    assert set(_outcomes(first).values()) == {"created"}

    second = store.import_found(home.found(), admin)

    assert _counts() == counts
    assert {item.outcome for item in second.items} == {"already imported"}
    assert second.counts()["certificate"] == {"already imported": 2}
    assert "Certificates: 2 already imported" in second.as_text()


def test_an_import_beside_another_of_the_same_files_stores_each_certificate_once(admin, roots, pki, queued,
                                                                                 monkeypatch):
    home = Home(pki)
    home.webroot(roots, ["a.example.com"])
    store.import_found(home.found(), admin)
    counts = _counts()
    read_versions = store._Known.__init__

    def read_before_the_first_import_stored_anything(known, owner):
        read_versions(known, owner)
        known.versions = set()

    monkeypatch.setattr(store._Known, "__init__", read_before_the_first_import_stored_anything)

    second = store.import_found(home.found(), admin)

    assert _counts() == counts
    assert second.counts()["certificate"] == {"already imported": 1}


def test_a_certificate_imports_completely_or_not_at_all(admin, roots, pki, queued):
    home = Home(pki)
    outside = roots["elsewhere"] / "ssl"
    outside.mkdir()
    home.add(["bad-path.example.com"], challenge="dns-01", dns_provider="cloudflare",
             dns_credentials={"auth_token": CF_TOKEN},
             install=FoundInstall(key_path=str(outside / "k.pem"), reload_command=RELOAD))
    wrong_key = home.add(["bad-key.example.com"], challenge="dns-01", dns_provider="cloudflare",
                         dns_credentials={"auth_token": "another-token"})
    wrong_key.key_pem = _key_pem()
    home.add(["good.example.com"], challenge="http-01-standalone")

    report = store.import_found(home.found(), admin)

    assert list(Certificate.objects.values_list("domains", flat=True)) == [["good.example.com"]]
    assert not DnsCredential.objects.exists() and not ReloadPreset.objects.exists()
    assert not InstallTarget.objects.exists()
    assert _outcomes(report) == {"bad-path.example.com": "not imported", "bad-key.example.com": "not imported",
                                 "good.example.com": "created"}
    messages = {item.label: "\n".join(item.messages) for item in report.items}
    assert f"add {outside} to CERTPANEL_INSTALL_ROOTS" in messages["bad-path.example.com"]
    assert messages["bad-key.example.com"].startswith(
        "/home/bad-key.example.com/bad-key.example.com.conf: private key:")
    assert "does not belong to the certificate" in messages["bad-key.example.com"]
    assert report.incomplete


def test_reader_problems_are_reported_with_path_and_line(admin, pki, queued):
    home = Home(pki)
    broken = home.add(["broken.example.com"], challenge="http-01-standalone")
    broken.problems = [Problem("/home/broken.example.com/broken.example.com.conf", "cannot read: Le_Alt='x", 4)]
    broken.cert_pem = ""
    home.add(["fine.example.com"], challenge="http-01-standalone")

    report = store.import_found(home.found(problems=[Problem("/home/account.conf", "not a conf line", 2)]), admin)

    assert _outcomes(report) == {"broken.example.com": "not imported", "fine.example.com": "created"}
    text = report.as_text()
    assert "/home/broken.example.com/broken.example.com.conf:4: cannot read: Le_Alt='x" in text
    assert "not read: /home/account.conf:2: not a conf line" in text


def test_a_dry_run_stores_nothing_and_says_would_create(admin, roots, pki, queued, django_capture_on_commit_callbacks):
    site = Site.objects.create(owner=admin, domains=["a.example.com"])
    home = Home(pki)
    home.webroot(roots, ["a.example.com"], install=FoundInstall(cert_path=str(roots["install"] / "a.crt"),
                                                                reload_command=RELOAD))
    home.add(["*.b.example.com"], challenge="dns-01", dns_provider="cloudflare",
             dns_credentials={"auth_token": CF_TOKEN})
    before = _counts()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = store.import_found(home.found(), admin, dry_run=True)

    assert _counts() == before and callbacks == []
    assert queued.apply_site.delay.call_count == 0
    assert {item.outcome for item in report.items} == {"would create"}
    assert {item.kind for item in report.items} == set(store.KINDS)
    assert report.as_text().startswith(f"Import from the acme.sh files in /home (dry run: nothing was stored)")
    # The preview says what the real run then does.
    assert [(i.kind, i.label) for i in store.import_found(home.found(), admin).items] == [
        (i.kind, i.label) for i in report.items]
    assert Certificate.objects.get(domains=["a.example.com"]).site == site


def test_a_certificate_covering_a_site_is_attached_and_served(alice, pki, queued, django_capture_on_commit_callbacks):
    site = Site.objects.create(owner=alice, domains=["c.example.com", "www.c.example.com"])
    home = Home(pki, directory_url=LETSENCRYPT)
    home.add(["c.example.com", "www.c.example.com"], challenge="dns-01-manual",
             install=None)

    with django_capture_on_commit_callbacks(execute=True):
        report = store.import_found(home.found(), alice)

    cert = Certificate.objects.get()
    assert cert.site == site and cert.owner == alice
    assert site.serving_version() == cert.current_version
    queued.apply_site.delay.assert_called_once_with(site.pk)
    assert _outcomes(report) == {"c.example.com (c.example.com, www.c.example.com)": "created"}


def test_a_user_may_not_import_a_custom_ca_or_an_external_method(alice, roots, pki, queued):
    custom = Home(pki)  # Pebble: not a CA preset
    custom.add(["d.example.com"], challenge="dns-01-manual")
    preset = Home(pki, directory_url=LETSENCRYPT)
    preset.webroot(roots, ["e.example.com"])

    custom_report = store.import_found(custom.found(), alice)
    external_report = store.import_found(preset.found(), alice)

    assert not Certificate.objects.exists() and not AcmeAccount.objects.exists()
    assert "only an administrator may use another CA" in "\n".join(custom_report.items[0].messages)
    assert "Only administrators may validate on servers the panel does not manage" in "\n".join(
        external_report.items[0].messages)


def test_a_users_install_paths_must_lie_in_their_home_or_a_grant(alice, roots, pki, queued, home_root):
    (home_root / "alice").mkdir(parents=True)
    home = Home(pki, directory_url=LETSENCRYPT)
    home.add(["shared.example.com"], challenge="dns-01-manual",
             install=FoundInstall(fullchain_path=str(roots["install"] / "s.pem")))
    home.add(["own.example.com"], challenge="dns-01-manual",
             install=FoundInstall(fullchain_path=str(home_root / "alice" / "o.pem")))

    report = store.import_found(home.found(), alice)

    assert _outcomes(report) == {"shared.example.com": "not imported", "own.example.com": "created"}
    messages = "\n".join(report.items[0].messages)
    assert f"to import it, an administrator grants {roots['install']} to alice on the user's page" in messages
    assert list(InstallTarget.objects.values_list("fullchain_path", flat=True)) == [str(home_root / "alice" / "o.pem")]


def test_an_expired_certificate_is_imported_and_due_at_once(admin, pki, queued):
    home = Home(pki)
    home.add(["old.example.com"], ends_in_days=-1, challenge="http-01-standalone",
             next_renewal_at=timezone.now() + datetime.timedelta(days=30))

    store.import_found(home.found(), admin)

    cert = Certificate.objects.get()
    assert cert.next_renewal_at <= timezone.now()
    assert list(policy.due()) == [cert]


def test_the_renewal_time_defaults_to_the_panels_rule(admin, pki, queued):
    home = Home(pki)
    home.add(["f.example.com"], challenge="http-01-standalone")

    store.import_found(home.found(), admin)

    cert = Certificate.objects.get()
    version = cert.current_version
    third = (version.not_after - version.not_before) / 3
    assert version.not_after - third - datetime.timedelta(hours=12) <= cert.next_renewal_at
    assert cert.next_renewal_at <= version.not_after - third


def test_shared_accounts_and_commands_are_created_once(admin, roots, pki, queued):
    home = Home(pki)
    for name in ("g.example.com", "h.example.com"):
        home.add([name], challenge="http-01-standalone",
                 install=FoundInstall(cert_path=str(roots["install"] / f"{name}.crt"), reload_command=RELOAD))
    lone = FoundAccount(directory_url=LETSENCRYPT, key_pem=_key_pem(), source="/home/ca/le/account.key")

    report = store.import_found(Found("acme.sh", "/home", accounts=[home.account, lone],
                                      certificates=home.certificates), admin)

    assert AcmeAccount.objects.count() == 2 and ReloadPreset.objects.count() == 1
    assert report.counts()["account"] == {"created": 2}
    assert report.counts()["reload preset"] == {"created": 1}
    assert AcmeAccount.objects.get(directory_url=LETSENCRYPT).account_url == ""


def test_an_existing_account_with_the_same_key_is_reused(admin, pki, queued):
    home = Home(pki)
    existing = AcmeAccount.objects.create(owner=admin, directory_url=PEBBLE, account_key=home.account.key_pem,
                                          account_url="https://127.0.0.1:14000/my-account/1")
    home.add(["i.example.com"], challenge="http-01-standalone")

    report = store.import_found(home.found(), admin)

    assert Certificate.objects.get().account == existing and AcmeAccount.objects.count() == 1
    assert _outcomes(report, store.ACCOUNT) == {f"ops@example.com @ {PEBBLE}": "already imported"}


def test_a_p384_account_key_signs_with_es384():
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    client = AcmeClient(PEBBLE, pem, "https://127.0.0.1:14000/my-account/1")

    signed = json.loads(client._net._wrap_in_jws(jose.JSONObjectWithFields(), b"nonce", PEBBLE))

    assert json.loads(jose.b64decode(signed["protected"].encode()))["alg"] == "ES384"
    assert jose.JWS.json_loads(json.dumps(signed)).verify(jose.JWKEC(key=key.public_key()))


def test_an_account_without_url_is_found_by_its_key_before_first_use(admin):
    account = AcmeAccount.objects.create(owner=admin, directory_url=PEBBLE, account_key=_key_pem(), account_url="")
    with mock.patch.object(accounts, "new_client") as new_client:
        new_client.return_value.register.return_value = "https://127.0.0.1:14000/my-account/7"
        accounts.client_for(account)
    account.refresh_from_db()
    assert account.account_url == "https://127.0.0.1:14000/my-account/7"
    assert new_client.call_args_list[-1] == mock.call(PEBBLE, account.account_key, account.account_url)


# --- the commands


@pytest.fixture
def acmesh_home(tmp_path):
    (tmp_path / "account.conf").write_text("")
    return tmp_path


def _run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_the_command_imports_for_the_only_administrator(admin, acmesh_home, pki, queued):
    home = Home(pki)
    home.add(["j.example.com"], challenge="http-01-standalone")
    with mock.patch.object(importers, "reader", return_value=lambda path: home.found()) as reader:
        output = _run("import_acmesh", str(acmesh_home), "--dry-run")
        assert not Certificate.objects.exists() and "would create: certificate j.example.com" in output
        output = _run("import_acmesh", str(acmesh_home))
    reader.assert_called_with("acme.sh")
    assert Certificate.objects.get().owner == admin
    assert "created: certificate j.example.com" in output and "PRIVATE KEY" not in output


def test_the_command_exits_1_when_something_was_not_imported(admin, acmesh_home, pki, queued):
    home = Home(pki)
    home.add(["k.example.com"], challenge="http-01-standalone")
    home.add(["l.example.com"], challenge="http-01-standalone").key_pem = _key_pem()
    with mock.patch.object(importers, "reader", return_value=lambda path: home.found()):
        with pytest.raises(CommandError) as raised:
            _run("import_acmesh", str(acmesh_home))
    assert raised.value.returncode == 1
    assert Certificate.objects.get().domains == ["k.example.com"]


def test_the_command_says_what_path_it_expected(admin, tmp_path):
    with pytest.raises(CommandError, match="is not an acme.sh home"):
        _run("import_acmesh", str(tmp_path))
    with pytest.raises(CommandError, match="is not a certbot config dir"):
        _run("import_certbot", str(tmp_path))


def test_the_command_needs_an_owner_when_there_is_not_one_administrator(admin, acmesh_home):
    get_user_model().objects.create_superuser("root2", password="pw-root-456")
    with pytest.raises(CommandError, match="--owner"):
        _run("import_acmesh", str(acmesh_home))
    with pytest.raises(CommandError, match="no user 'nobody'"):
        _run("import_acmesh", str(acmesh_home), "--owner", "nobody")
