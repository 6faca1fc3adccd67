"""certs.importers.certbot.read_config_dir against config dirs laid out as certbot 5.8 writes them.

The layout and the conf text are copied from a real run (certbot certonly against Pebble):
renewal/<name>.conf as storage.make_renewal_configobj writes it (the four live paths, then
[renewalparams] with renewal.STR_CONFIG_ITEMS and the plugin's options, webroot_map as a
subsection, --deploy-hook saved as renew_hook), live/<name>/*.pem as relative links to
archive/<name>/*1.pem (storage.RenewableCert.new_lineage), accounts/<host:port>/<path>/<id>/
with private_key.json (a JWK), regr.json ({"body": {}, "uri": ...}) and meta.json
(account.AccountFileStorage). The confs name /etc/letsencrypt: the dir read is a copy
elsewhere, as after `cp -a /etc/letsencrypt` or an upload. The real certbot's own output
is read in tests/e2e/test_import_certbot.py.
"""

import datetime
import hashlib
import json
import os
from pathlib import Path

import josepy
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certs.importers.certbot import read_config_dir

ORIGIN = "/etc/letsencrypt"
SERVER = "https://127.0.0.1:14000/dir"
ACCOUNT_URL = "https://127.0.0.1:14000/my-account/1"
NOW = datetime.datetime.now(datetime.timezone.utc)


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class CA:
    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test intermediate")])
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(NOW - datetime.timedelta(days=1))
                     .not_valid_after(NOW + datetime.timedelta(days=900))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def issue(self, names, key, days=90):
        return (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(NOW - datetime.timedelta(days=1))
                .not_valid_after(NOW + datetime.timedelta(days=days))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .sign(self.key, hashes.SHA256()))


class ConfigDir:
    """A certbot config dir under `root`, its confs naming /etc/letsencrypt like the original."""

    def __init__(self, root: Path):
        self.root = root
        self.ca = CA()
        self.account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwk = josepy.JWKRSA(key=self.account_key)
        # certbot's account id: the MD5 of the public key (account.Account.__init__)
        self.account_id = hashlib.md5(self.account_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()
        for kind in ("pre", "deploy", "post"):
            (root / "renewal-hooks" / kind).mkdir(parents=True, exist_ok=True)
        (root / "renewal").mkdir(exist_ok=True)
        self.add_account("127.0.0.1:14000/dir")

    def add_account(self, server_path, regr=None):
        directory = self.root / "accounts" / server_path / self.account_id
        directory.mkdir(parents=True)
        (directory / "private_key.json").write_text(self.jwk.json_dumps())
        (directory / "regr.json").write_text(json.dumps(regr or {"body": {}, "uri": ACCOUNT_URL}))
        (directory / "meta.json").write_text('{"creation_dt": "2026-11-27T05:04:20Z", "creation_host": "vm"}')
        return directory

    def lineage(self, name, names, params, key=None, top="", webroot_map=None, days=90):
        """archive/ files, live/ links and renewal/<name>.conf; `params` are [renewalparams] lines."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        leaf = self.ca.issue(names, key, days)
        archive, live = self.root / "archive" / name, self.root / "live" / name
        archive.mkdir(parents=True)
        live.mkdir(parents=True)
        files = {"cert": _pem(leaf), "chain": _pem(self.ca.cert), "fullchain": _pem(leaf) + _pem(self.ca.cert),
                 "privkey": _key_pem(key)}
        for kind, text in files.items():
            (archive / f"{kind}1.pem").write_text(text)
            (live / f"{kind}.pem").symlink_to(f"../../archive/{name}/{kind}1.pem")
        lines = [
            "version = 5.8.0",
            f"archive_dir = {ORIGIN}/archive/{name}",
            *(f"{kind} = {ORIGIN}/live/{name}/{kind}.pem" for kind in ("cert", "privkey", "chain", "fullchain")),
            *([top] if top else []),
            "[renewalparams]",
            f"account = {self.account_id}",
            f"config_dir = {ORIGIN}",
            "work_dir = /var/lib/letsencrypt",
            "logs_dir = /var/log/letsencrypt",
            f"server = {SERVER}",
            *params,
        ]
        if webroot_map:
            lines += ["[[webroot_map]]", *(f"{n} = {root}" for n, root in webroot_map.items())]
        (self.root / "renewal" / f"{name}.conf").write_text("\n".join(lines) + "\n")
        return {"leaf": leaf, "key": key, "files": files}

    def webroot(self, name, names, *extra, root="/var/www/site", key=None, top=""):
        return self.lineage(name, names, ["authenticator = webroot", f"webroot_path = {root},", "key_type = ecdsa",
                                          *extra], key=key, top=top, webroot_map={n: root for n in names})

    def hook(self, kind, name, text, executable=True):
        path = self.root / "renewal-hooks" / kind / name
        path.write_text(text)
        path.chmod(0o755 if executable else 0o644)
        return path

    def dns(self, name, plugin, credentials: dict | None, extra=()):
        """A dns-<plugin> lineage; its credentials INI at <root>/<plugin>.ini (None: not written)."""
        ini = self.root.parent / f"{plugin}.ini"
        if credentials is not None:
            ini.write_text("".join(f"dns_{plugin}_{k} = {v}\n" for k, v in credentials.items()))
            ini.chmod(0o600)
        self.lineage(name, [f"{name}.example.test"], [
            f"authenticator = dns-{plugin}", f"dns_{plugin}_credentials = {ini}",
            f"dns_{plugin}_propagation_seconds = 10", *extra])
        return ini

    def read(self):
        found = read_config_dir(self.root)
        return found, {c.name: c for c in found.certificates}


@pytest.fixture
def certbot_dir(tmp_path):
    return ConfigDir(tmp_path / "letsencrypt")


def texts(items):
    return [str(item) for item in items]


def test_a_webroot_lineage_reads_every_field(certbot_dir):
    made = certbot_dir.webroot("shop", ["shop.example.test", "www.shop.example.test"],
                               "renew_hook = systemctl reload nginx")
    found, certs = certbot_dir.read()
    assert found.client == "certbot" and found.problems == []
    cert = certs["shop"]
    assert cert.problems == [], texts(cert.problems)
    assert cert.source == str(certbot_dir.root / "renewal" / "shop.conf")
    assert cert.domains == ["shop.example.test", "www.shop.example.test"]
    assert cert.key_type == "ec256"
    assert x509.load_pem_x509_certificate(cert.cert_pem.encode()) == made["leaf"]
    assert cert.chain_pem == made["files"]["chain"]
    assert serialization.load_pem_private_key(cert.key_pem.encode(), None).private_numbers() == \
        made["key"].private_numbers()
    assert cert.challenge == "http-01-webroot" and cert.webroot == "/var/www/site"
    assert cert.account is found.accounts[0]
    assert cert.account.directory_url == SERVER and cert.account.account_url == ACCOUNT_URL
    # The install target keeps the paths the user's servers read, as certbot's conf names them.
    assert cert.install.paths() == {kind: f"{ORIGIN}/live/shop/{name}.pem" for kind, name in (
        ("key_path", "privkey"), ("cert_path", "cert"), ("chain_path", "chain"), ("fullchain_path", "fullchain"))}
    assert cert.install.reload_command == "systemctl reload nginx"
    assert cert.next_renewal_at is None  # the panel's own rule
    assert any("turn off certbot's own renewal" in n for n in texts(cert.notes))


def test_the_account_key_is_certbots_jwk_as_pem(certbot_dir):
    certbot_dir.webroot("shop", ["shop.example.test"])
    found, _ = certbot_dir.read()
    (account,) = found.accounts
    key = serialization.load_pem_private_key(account.key_pem.encode(), None)
    assert josepy.JWKRSA(key=key).thumbprint() == certbot_dir.jwk.thumbprint()
    assert account.source.endswith(f"/{certbot_dir.account_id}/private_key.json")


def test_an_old_regr_gives_the_accounts_email(certbot_dir):
    old = {"body": {"contact": ["mailto:ops@example.test"], "status": "valid"}, "uri": ACCOUNT_URL}
    other = ConfigDir(certbot_dir.root.parent / "old")
    for path in (other.root / "accounts").rglob("regr.json"):
        path.write_text(json.dumps(old))
    found = read_config_dir(other.root)
    assert found.accounts[0].email == "ops@example.test"


def test_lets_encrypts_v01_account_folder_serves_the_v02_server(tmp_path):
    """certbot links acme-v02's accounts to the account made for acme-v01 (constants.LE_REUSE_SERVERS)."""
    config = ConfigDir(tmp_path / "le")
    config.add_account("acme-v01.api.letsencrypt.org/directory")
    config.lineage("shop", ["shop.example.test"], ["authenticator = standalone"])
    conf = config.root / "renewal" / "shop.conf"
    conf.write_text(conf.read_text().replace(SERVER, "https://acme-v02.api.letsencrypt.org/directory"))
    found, certs = config.read()
    assert certs["shop"].problems == [], texts(certs["shop"].problems)
    assert certs["shop"].account.directory_url == "https://acme-v02.api.letsencrypt.org/directory"
    unused = [a for a in found.accounts if a is not certs["shop"].account]
    assert [a.directory_url for a in unused] == ["https://127.0.0.1:14000/dir"]


def test_live_links_are_read_inside_the_given_dir_not_at_the_confs_paths(certbot_dir, tmp_path):
    certbot_dir.webroot("shop", ["shop.example.test"])
    moved = tmp_path / "copied-elsewhere"
    os.rename(certbot_dir.root, moved)  # a copy anywhere reads the same: links are relative
    found = read_config_dir(moved)
    cert = found.certificates[0]
    assert cert.problems == [] and cert.cert_pem
    assert not Path(ORIGIN, "live", "shop").exists()


def test_an_absolute_link_under_the_original_dir_is_followed_inside_the_copy(certbot_dir):
    certbot_dir.webroot("shop", ["shop.example.test"])
    link = certbot_dir.root / "live" / "shop" / "privkey.pem"
    link.unlink()
    link.symlink_to(f"{ORIGIN}/archive/shop/privkey1.pem")
    _, certs = certbot_dir.read()
    assert certs["shop"].problems == [] and certs["shop"].key_pem


def test_a_link_leading_outside_the_config_dir_is_refused(certbot_dir, tmp_path):
    made = certbot_dir.webroot("shop", ["shop.example.test"])
    outside = tmp_path / "outside.pem"
    outside.write_text(made["files"]["privkey"])
    link = certbot_dir.root / "live" / "shop" / "privkey.pem"
    link.unlink()
    link.symlink_to(outside)
    _, certs = certbot_dir.read()
    assert [str(p) for p in certs["shop"].problems] == [
        f"{link}: the private key (privkey in shop.conf) leads outside the config dir, to {outside}"]
    assert certs["shop"].key_pem == ""


def test_a_malformed_conf_line_is_reported_with_path_and_line_and_the_others_import(certbot_dir):
    certbot_dir.webroot("good", ["good.example.test"])
    certbot_dir.webroot("broken", ["broken.example.test"])
    conf = certbot_dir.root / "renewal" / "broken.conf"
    lines = conf.read_text().splitlines()
    lines[11] = "dns_cloudflare_api_token leaked-secret"  # the "=" lost, on a line that holds a secret
    conf.write_text("\n".join(lines) + "\n")
    found, certs = certbot_dir.read()
    (problem,) = certs["broken"].problems
    assert (problem.path, problem.line) == (str(conf), 12)
    assert "neither a `key = value` setting nor a [section]" in problem.message
    assert "leaked-secret" not in str(problem)
    assert str(problem).startswith(f"{conf}:12: ")
    assert certs["good"].problems == [] and certs["good"].cert_pem
    assert found.accounts  # the account is still read for the good one


def test_a_missing_private_key_is_named_and_the_others_import(certbot_dir):
    certbot_dir.webroot("good", ["good.example.test"])
    certbot_dir.webroot("keyless", ["keyless.example.test"])
    (certbot_dir.root / "archive" / "keyless" / "privkey1.pem").unlink()
    _, certs = certbot_dir.read()
    link = certbot_dir.root / "live" / "keyless" / "privkey.pem"
    assert texts(certs["keyless"].problems) == [
        f"{link}: the private key (privkey in keyless.conf) is a link to ../../archive/keyless/privkey1.pem, "
        "which does not exist"]
    assert certs["keyless"].key_pem == ""
    assert certs["good"].problems == [] and certs["good"].key_pem


def test_a_conf_without_the_four_files_or_its_account_is_blocked(certbot_dir):
    certbot_dir.webroot("nochain", ["nochain.example.test"])
    conf = certbot_dir.root / "renewal" / "nochain.conf"
    conf.write_text("".join(line + "\n" for line in conf.read_text().splitlines() if not line.startswith("chain")))
    certbot_dir.webroot("stranger", ["stranger.example.test"])
    conf = certbot_dir.root / "renewal" / "stranger.conf"
    conf.write_text(conf.read_text().replace(certbot_dir.account_id, "0123456789abcdef0123456789abcdef"))
    _, certs = certbot_dir.read()
    assert "names no chain file" in texts(certs["nochain"].problems)[0]
    (problem,) = certs["stranger"].problems
    assert problem.path.endswith("accounts/127.0.0.1:14000/dir/0123456789abcdef0123456789abcdef")
    assert "copy the whole config dir" in problem.message


def test_a_broken_account_key_is_a_problem_of_the_dir_and_of_its_certificates(certbot_dir):
    certbot_dir.webroot("shop", ["shop.example.test"])
    key_file = next((certbot_dir.root / "accounts").rglob("private_key.json"))
    key_file.write_text("{not json")
    found, certs = certbot_dir.read()
    assert [p.path for p in found.problems] == [str(key_file)]
    assert "not there or could not be read" in certs["shop"].problems[0].message


def test_an_rsa_key_is_kept_and_a_conf_saying_otherwise_is_noted(certbot_dir):
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    certbot_dir.webroot("shop", ["shop.example.test"], key=key)  # the conf says ecdsa
    _, certs = certbot_dir.read()
    assert certs["shop"].key_type == "rsa3072" and certs["shop"].problems == []
    (note,) = [n for n in certs["shop"].notes if "key_type" in n.message]
    assert "key_type = ecdsa, elliptic_curve = secp256r1, but the key is RSA 3072" in note.message


def test_a_key_certpanel_cannot_renew_with_is_blocked(certbot_dir):
    certbot_dir.webroot("p521", ["p521.example.test"], key=ec.generate_private_key(ec.SECP521R1()))
    _, certs = certbot_dir.read()
    assert "the key is EC secp521r1" in texts(certs["p521"].problems)[0]


def test_renew_before_expiry_sets_the_renewal_time(certbot_dir):
    made = certbot_dir.webroot("shop", ["shop.example.test"], top="renew_before_expiry = 2 weeks 3 days")
    certbot_dir.webroot("plain", ["plain.example.test"], top="renew_before_expiry = 30")
    certbot_dir.webroot("odd", ["odd.example.test"], top="renew_before_expiry = soon")
    _, certs = certbot_dir.read()
    assert certs["shop"].next_renewal_at == made["leaf"].not_valid_after_utc - datetime.timedelta(days=17)
    plain_leaf = x509.load_pem_x509_certificate(certs["plain"].cert_pem.encode())
    assert certs["plain"].next_renewal_at == plain_leaf.not_valid_after_utc - datetime.timedelta(days=30)
    assert certs["odd"].next_renewal_at is None
    assert any("renew_before_expiry = soon" in n for n in texts(certs["odd"].notes))


# --- validation methods

def test_one_root_for_every_name_is_webroot_and_different_roots_are_blocked(certbot_dir):
    certbot_dir.lineage("split", ["a.example.test", "b.example.test"],
                        ["authenticator = webroot", "webroot_path = /var/www/a, /var/www/b"],
                        webroot_map={"a.example.test": "/var/www/a", "b.example.test": "/var/www/b"})
    # A name missing from the map gets the last -w, as certbot's webroot plugin does.
    certbot_dir.lineage("partial", ["c.example.test", "d.example.test"],
                        ["authenticator = webroot", "webroot_path = /var/www/c,"],
                        webroot_map={"c.example.test": "/var/www/c"})
    _, certs = certbot_dir.read()
    (problem,) = certs["split"].problems
    assert "/var/www/a: a.example.test; /var/www/b: b.example.test" in problem.message
    assert "split it into one certificate per document root" in problem.message
    assert problem.line == 15  # the [[webroot_map]] line
    assert certs["partial"].problems == [] and certs["partial"].webroot == "/var/www/c"


def test_standalone_notes_certbots_own_port(certbot_dir):
    certbot_dir.lineage("alone", ["alone.example.test"], ["authenticator = standalone", "http01_port = 8080"])
    certbot_dir.lineage("eighty", ["eighty.example.test"], ["authenticator = standalone"])
    _, certs = certbot_dir.read()
    assert certs["alone"].challenge == "http-01-standalone" and certs["alone"].problems == []
    assert any("port 8080 (http01_port)" in n for n in texts(certs["alone"].notes))
    assert not any("http01_port" in n for n in texts(certs["eighty"].notes))


@pytest.mark.parametrize("plugin, challenge", [("nginx", "http-01-nginx"), ("apache", "http-01-apache")])
def test_the_nginx_and_apache_authenticators_ask_for_the_config(certbot_dir, plugin, challenge):
    certbot_dir.lineage("srv", ["srv.example.test"], [f"authenticator = {plugin}", f"installer = {plugin}"])
    _, certs = certbot_dir.read()
    assert certs["srv"].challenge == challenge
    (problem,) = certs["srv"].problems
    assert "certbot reconfigure --cert-name srv --webroot -w DOCUMENT_ROOT" in problem.message
    assert f"http-01-{plugin} edits one config file you name" in problem.message


def test_manual_dns_is_dns01_manual_and_its_hooks_do_not_carry_over(certbot_dir):
    certbot_dir.lineage("byhand", ["byhand.example.test"], ["authenticator = manual", "pref_challs = dns-01,",
                                                            "manual_auth_hook = /usr/local/bin/add-txt"])
    certbot_dir.lineage("httphand", ["httphand.example.test"], ["authenticator = manual"])
    _, certs = certbot_dir.read()
    assert certs["byhand"].challenge == "dns-01-manual" and certs["byhand"].problems == []
    assert any("manual_auth_hook = /usr/local/bin/add-txt does not carry over" in n
               for n in texts(certs["byhand"].notes))
    assert "CertPanel has no manual HTTP-01" in texts(certs["httphand"].problems)[0]


# --- DNS plugins: the credentials INI mapped onto the CertPanel provider's fields

DNS_CASES = [
    ("cloudflare", {"api_token": "cf-token"}, "cloudflare", {"auth_token": "cf-token"}),
    ("cloudflare", {"email": "ops@example.test", "api_key": "global-key"}, "cloudflare",
     {"auth_username": "ops@example.test", "auth_token": "global-key"}),
    ("rfc2136", {"server": "192.0.2.1", "port": "5353", "name": "certbot.", "secret": "c2VjcmV0",
                 "algorithm": "HMAC-SHA512"}, "rfc2136",
     {"server": "192.0.2.1", "port": "5353", "tsig_key_name": "certbot.", "tsig_secret": "c2VjcmV0",
      "tsig_algorithm": "hmac-sha512"}),
    ("rfc2136", {"server": "192.0.2.1", "name": "k.", "secret": "c2VjcmV0", "base_domain": "example.test"},
     "rfc2136", {"server": "192.0.2.1", "tsig_key_name": "k.", "tsig_secret": "c2VjcmV0", "zone": "example.test",
                 "tsig_algorithm": "hmac-md5"}),
    ("digitalocean", {"token": "do-token"}, "digitalocean", {"auth_token": "do-token"}),
    ("linode", {"key": "a" * 64}, "linode4", {"auth_token": "a" * 64}),
    ("linode", {"key": "short-v3-key"}, "linode", {"auth_token": "short-v3-key"}),
    ("ovh", {"endpoint": "ovh-eu", "application_key": "ak", "application_secret": "as", "consumer_key": "ck"},
     "ovh", {"auth_entrypoint": "ovh-eu", "auth_application_key": "ak", "auth_application_secret": "as",
             "auth_consumer_key": "ck"}),
    ("dnsimple", {"token": "ds-token"}, "dnsimple", {"auth_token": "ds-token"}),
    ("dnsmadeeasy", {"api_key": "dme-key", "secret_key": "dme-secret"}, "dnsmadeeasy",
     {"auth_username": "dme-key", "auth_token": "dme-secret"}),
    ("luadns", {"email": "ops@example.test", "token": "lua-token"}, "luadns",
     {"auth_username": "ops@example.test", "auth_token": "lua-token"}),
    ("nsone", {"api_key": "ns1-key"}, "nsone", {"auth_token": "ns1-key"}),
    ("gehirn", {"api_token": "g-token", "api_secret": "g-secret"}, "gehirn",
     {"auth_token": "g-token", "auth_secret": "g-secret"}),
    ("sakuracloud", {"api_token": "s-token", "api_secret": "s-secret"}, "sakuracloud",
     {"auth_token": "s-token", "auth_secret": "s-secret"}),
]


def test_a_credentials_file_inside_the_config_dir_is_named_inside_it(certbot_dir):
    ini = certbot_dir.root / "cloudflare.ini"
    ini.write_text("dns_cloudflare_api_token = t0ken\n")
    certbot_dir.lineage("zone", ["zone.example.test"], [
        "authenticator = dns-cloudflare", f"dns_cloudflare_credentials = {ini}"])

    _, certs = certbot_dir.read()

    assert certs["zone"].dns_source == "certbot dns-cloudflare (cloudflare.ini)"


@pytest.mark.parametrize("plugin, credentials, provider, values", DNS_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(DNS_CASES)])
def test_a_dns_plugins_credentials_map_onto_the_providers_fields(certbot_dir, plugin, credentials, provider, values):
    from certs.dns.registry import provider_class

    ini = certbot_dir.dns("zone", plugin, credentials)
    _, certs = certbot_dir.read()
    cert = certs["zone"]
    assert cert.problems == [], texts(cert.problems)
    assert (cert.challenge, cert.dns_provider, cert.dns_credentials) == ("dns-01", provider, values)
    assert cert.dns_source == f"certbot dns-{plugin} ({ini})"
    declared = {f.name for f in provider_class(provider).fields}
    assert set(values) <= declared  # every value lands on a field the provider has
    provider_class(provider)(values)  # and the provider accepts them


def test_google_credentials_are_the_service_account_file(certbot_dir, tmp_path):
    account_file = tmp_path / "google.json"
    account_file.write_text('{"type": "service_account", "project_id": "p"}')
    certbot_dir.dns("zone", "google", {"credentials": account_file})
    _, certs = certbot_dir.read()
    info = certs["zone"].dns_credentials["auth_service_account_info"]
    assert certs["zone"].dns_provider == "googleclouddns" and info.startswith("base64::")


def test_confined_a_credentials_file_outside_the_config_dir_is_not_read(certbot_dir):
    """An uploaded dir's credentials path is another machine's: this server's file there is not used."""
    ini = certbot_dir.dns("zone", "cloudflare", {"api_token": "server-token"})  # beside the dir, not in it
    conf = certbot_dir.root / "renewal" / "zone.conf"

    cert = {c.name: c for c in read_config_dir(certbot_dir.root, confined=True).certificates}["zone"]

    (problem,) = cert.problems
    assert (problem.path, problem.line) == (str(conf), _line(conf, "dns_cloudflare_credentials"))
    assert f"dns_cloudflare_credentials names {ini}, outside the uploaded config dir" in problem.message
    assert f"put the file into the archive as {certbot_dir.root / 'cloudflare.ini'}" in problem.message
    assert f"change this line to dns_cloudflare_credentials = {ORIGIN}/cloudflare.ini" in problem.message
    assert "manage.py import_certbot" in problem.message
    assert cert.dns_credentials == {} and "server-token" not in str(cert)
    # The command reads the server's own config dir: there the file is read.
    assert certbot_dir.read()[1]["zone"].dns_credentials == {"auth_token": "server-token"}


@pytest.mark.parametrize("named", [f"{ORIGIN}/cloudflare.ini", "{root}/cloudflare.ini"], ids=["origin", "given"])
def test_confined_a_credentials_file_inside_the_config_dir_is_read(certbot_dir, named):
    (certbot_dir.root / "cloudflare.ini").write_text("dns_cloudflare_api_token = t0ken\n")
    certbot_dir.lineage("zone", ["zone.example.test"], [
        "authenticator = dns-cloudflare", f"dns_cloudflare_credentials = {named.format(root=certbot_dir.root)}"])

    cert = {c.name: c for c in read_config_dir(certbot_dir.root, confined=True).certificates}["zone"]

    assert cert.problems == [], texts(cert.problems)
    assert cert.dns_credentials == {"auth_token": "t0ken"}


def test_confined_a_link_inside_cannot_lead_to_a_credentials_file_outside(certbot_dir):
    outside = certbot_dir.root.parent / "server.ini"
    outside.write_text("dns_cloudflare_api_token = server-token\n")
    (certbot_dir.root / "cloudflare.ini").symlink_to(outside)
    certbot_dir.lineage("zone", ["zone.example.test"], [
        "authenticator = dns-cloudflare", f"dns_cloudflare_credentials = {ORIGIN}/cloudflare.ini"])

    cert = {c.name: c for c in read_config_dir(certbot_dir.root, confined=True).certificates}["zone"]

    (problem,) = cert.problems
    assert "outside the uploaded config dir" in problem.message and cert.dns_credentials == {}


@pytest.mark.parametrize("inside", [False, True], ids=["outside", "inside"])
def test_confined_googles_service_account_file_is_read_only_inside(certbot_dir, inside):
    account_file = (certbot_dir.root if inside else certbot_dir.root.parent) / "google.json"
    account_file.write_text('{"type": "service_account", "project_id": "p"}')
    ini = certbot_dir.root / "google.ini"
    ini.write_text(f"dns_google_credentials = {account_file}\n")
    certbot_dir.lineage("zone", ["zone.example.test"], [
        "authenticator = dns-google", f"dns_google_credentials = {ORIGIN}/google.ini"])

    cert = {c.name: c for c in read_config_dir(certbot_dir.root, confined=True).certificates}["zone"]

    if inside:
        assert cert.problems == [] and cert.dns_provider == "googleclouddns"
        return
    (problem,) = cert.problems
    assert (problem.path, problem.line) == (str(ini), 1)
    assert f"dns_google_credentials names {account_file}, outside the uploaded config dir" in problem.message
    assert cert.dns_credentials == {}


def _line(conf, key):
    return next(n for n, line in enumerate(conf.read_text().splitlines(), 1) if line.startswith(f"{key} ="))


def test_an_old_plugin_prefix_is_understood(certbot_dir):
    """certbot before 1.0 saved "certbot-dns-cloudflare:dns-cloudflare" and prefixed its options."""
    ini = certbot_dir.root.parent / "cf.ini"
    ini.write_text("certbot_dns_cloudflare:dns_cloudflare_api_token = old-token\n")
    certbot_dir.lineage("old", ["old.example.test"], [
        "authenticator = certbot-dns-cloudflare:dns-cloudflare",
        f"certbot_dns_cloudflare:dns_cloudflare_credentials = {ini}"])
    _, certs = certbot_dir.read()
    assert certs["old"].problems == [], texts(certs["old"].problems)
    assert certs["old"].dns_credentials == {"auth_token": "old-token"}


def test_missing_dns_credentials_are_named_without_their_values(certbot_dir):
    absent = certbot_dir.dns("absent", "cloudflare", None)
    partial = certbot_dir.dns("partial", "ovh", {"endpoint": "ovh-eu", "application_key": "secret-ak-value"})
    found, certs = certbot_dir.read()
    assert texts(certs["absent"].problems) == [f"{absent}: the DNS credentials file does not exist or cannot be read"]
    (problem,) = certs["partial"].problems
    assert problem.path == str(partial)
    assert "lacks dns_ovh_application_secret and dns_ovh_consumer_key" in problem.message
    everything = " ".join(texts(found.problems) + [str(p) for c in found.certificates for p in c.problems + c.notes])
    assert "secret-ak-value" not in everything


def test_an_unparsable_credentials_file_gives_its_line_but_not_its_text(certbot_dir):
    ini = certbot_dir.dns("zone", "digitalocean", {"token": "fine"})
    ini.write_text("dns_digitalocean_token = fine\ndns_digitalocean_token-leaked-secret\n")
    _, certs = certbot_dir.read()
    (problem,) = certs["zone"].problems
    assert (problem.path, problem.line) == (str(ini), 2)
    assert "leaked-secret" not in str(problem)


def test_route53_and_unknown_plugins_are_blocked_with_what_to_do(certbot_dir):
    certbot_dir.lineage("aws", ["aws.example.test"], ["authenticator = dns-route53"])
    certbot_dir.dns("exotic", "someplace", {"token": "x"})
    certbot_dir.dns("weakalg", "rfc2136", {"server": "192.0.2.1", "name": "k.", "secret": "c2VjcmV0",
                                           "algorithm": "HMAC-SHA224"})
    _, certs = certbot_dir.read()
    assert "AWS's own configuration" in texts(certs["aws"].problems)[0]
    assert "no CertPanel DNS provider is known for certbot's dns-someplace" in texts(certs["exotic"].problems)[0]
    assert "dns_rfc2136_algorithm = HMAC-SHA224 is not one CertPanel signs with" in texts(certs["weakalg"].problems)[0]


# --- hooks

def test_hooks_become_the_reload_command_in_certbots_order(certbot_dir):
    certbot_dir.webroot("shop", ["shop.example.test"], "renew_hook = systemctl reload nginx",
                        "post_hook = systemctl reload php-fpm", "pre_hook = echo before")
    b = certbot_dir.hook("deploy", "20-b", "#!/bin/sh\ncp x y\n")
    a = certbot_dir.hook("deploy", "10-a", "#!/bin/sh\ntrue\n")
    certbot_dir.hook("deploy", "30-off", "#!/bin/sh\nfalse\n", executable=False)  # certbot skips it too
    certbot_dir.hook("deploy", "40-c~", "#!/bin/sh\nfalse\n")  # an editor's backup: skipped
    post = certbot_dir.hook("post", "50-post", "#!/bin/sh\ntrue\n")
    pre = certbot_dir.hook("pre", "stop", "#!/bin/sh\ntrue\n")
    _, certs = certbot_dir.read()
    cert = certs["shop"]
    # Each script by its text, run by its #! shell with its name as $0: never by a path into the
    # directory read, which for an uploaded archive is a temporary one that is gone afterwards.
    assert cert.install.reload_command == "\n".join([
        "/bin/sh -c '#!/bin/sh\ntrue\n' 10-a", "/bin/sh -c '#!/bin/sh\ncp x y\n' 20-b", "systemctl reload nginx",
        "/bin/sh -c '#!/bin/sh\ntrue\n' 50-post", "systemctl reload php-fpm"])
    assert str(certbot_dir.root) not in cert.install.reload_command and str(a) not in cert.install.reload_command
    assert cert.install.reload_name == "certbot: deploy/10-a, deploy/20-b, renew_hook, post/50-post, post_hook"
    assert cert.problems == [] and {str(b), str(post)}.isdisjoint(texts(cert.problems))
    notes = texts(cert.notes)
    assert any(n.startswith(f"{pre}: this pre-hook does not carry over") for n in notes)
    assert any("pre_hook = echo before does not carry over" in n for n in notes)


def test_a_hook_runs_with_its_own_shell_and_a_script_in_another_language_is_refused(certbot_dir):
    certbot_dir.webroot("shop", ["shop.example.test"])
    certbot_dir.hook("deploy", "10-bash", "#!/usr/bin/env bash\n[[ -n $RENEWED_LINEAGE ]] && echo it's done\n")
    python = certbot_dir.hook("deploy", "20-py", "#!/usr/bin/python3\nprint('hi')\n")
    _, certs = certbot_dir.read()
    assert texts(certs["shop"].problems) == [
        f"{python}: this hook runs with /usr/bin/python3: the panel carries over shell scripts only "
        "(bash, dash, ksh, mksh, sh, zsh). Rewrite it as one, or have it call the program"]
    certbot_dir.hook("deploy", "20-py", "#!/bin/sh\ntrue\n")
    _, certs = certbot_dir.read()
    command = certs["shop"].install.reload_command
    assert command.startswith("export RENEWED_LINEAGE=/etc/letsencrypt/live/shop ")
    assert ("/usr/bin/env bash -c '#!/usr/bin/env bash\n[[ -n $RENEWED_LINEAGE ]] && echo it'\"'\"'s done\n' 10-bash"
            in command)


def test_a_binary_or_oversized_hook_is_refused_naming_the_file(certbot_dir):
    certbot_dir.webroot("shop", ["shop.example.test"], "renew_hook = systemctl reload nginx")
    program = certbot_dir.root / "renewal-hooks" / "deploy" / "10-program"
    program.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    program.chmod(0o755)
    latin1 = certbot_dir.root / "renewal-hooks" / "deploy" / "20-latin1"
    latin1.write_bytes(b"#!/bin/sh\necho caf\xe9\n")
    latin1.chmod(0o755)
    huge = certbot_dir.hook("post", "30-huge", "#!/bin/sh\n" + "# padding\n" * 7000)
    _, certs = certbot_dir.read()
    problems = texts(certs["shop"].problems)
    assert problems[:2] == [f"{path}: this hook is not a text script (a compiled program?): the panel keeps a "
                            "hook's text, not a path to it. Replace it with a shell script that runs the program, "
                            "installed on the server" for path in (program, latin1)]
    assert problems[2] == (f"{huge}: this hook is larger than 64 KiB, the most the panel keeps of a hook: shorten it, "
                           "or have it call a program installed on the server")


def test_a_post_hook_alone_reloads_and_certbots_variables_are_set_when_used(certbot_dir):
    certbot_dir.webroot("post", ["post.example.test"], "post_hook = systemctl reload nginx")
    certbot_dir.webroot("vars", ["vars.example.test", "www.vars.example.test"],
                        'renew_hook = cp "$RENEWED_LINEAGE/fullchain.pem" /srv/app/')
    _, certs = certbot_dir.read()
    assert certs["post"].install.reload_command == "systemctl reload nginx"
    assert certs["vars"].install.reload_command.splitlines() == [
        f"export RENEWED_LINEAGE={ORIGIN}/live/vars RENEWED_DOMAINS='vars.example.test www.vars.example.test'",
        'cp "$RENEWED_LINEAGE/fullchain.pem" /srv/app/']


def test_settings_that_do_not_carry_over_are_noted(certbot_dir):
    certbot_dir.webroot("shop", ["shop.example.test"], "preferred_chain = ISRG Root X1", "must_staple = True",
                        "installer = nginx")
    _, certs = certbot_dir.read()
    notes = texts(certs["shop"].notes)
    assert certs["shop"].problems == []
    assert any("preferred_chain = ISRG Root X1 is not carried over" in n for n in notes)
    assert any("must_staple = True is not carried over" in n for n in notes)
    assert any(f"installer = nginx: the server config keeps reading {ORIGIN}/live/shop/" in n for n in notes)


def test_a_path_that_is_not_a_config_dir_is_reported(tmp_path):
    found = read_config_dir(tmp_path / "nowhere")
    assert "is not a directory" in texts(found.problems)[0]
    empty = read_config_dir(tmp_path)
    assert "holds no <name>.conf" in texts(empty.problems)[0]
