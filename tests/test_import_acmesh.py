"""certs.importers.acmesh.read_home against the acme.sh 3.1.4 home in /work/shared/fixtures
(written by acme.sh itself), and against confs written here the way acme.sh writes them."""

import base64
import datetime
import io
import shutil
import tarfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certs.dns.registry import provider_class
from certs.importers import acmesh_dns
from certs.importers.acmesh import ca_folder, parse_bind_key, read_home

FIXTURE = Path("/work/shared/fixtures/acmesh-3.1.4-home-sample.tar.gz")
CF_TOKEN = "Y2xzbi1leGFtcGxlLXRva2Vu"
PEBBLE = "https://127.0.0.1:14000/dir"


@pytest.fixture
def home(tmp_path):
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path, filter="data")
    return tmp_path / "acmesh-home"


def certificate(found, name):
    [cert] = [c for c in found.certificates if c.name == name]
    return cert


def utc(text):
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


def sans(pem):
    leaf = x509.load_pem_x509_certificate(pem.encode())
    return sorted(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName))


def test_it_reads_the_account_with_its_key_url_and_email(home):
    found = read_home(home)

    assert found.client == "acme.sh" and found.problems == []
    [account] = found.accounts
    assert account.directory_url == PEBBLE  # the ca/ folder has no port: the confs' Le_API gives it back
    assert account.account_url == "https://127.0.0.1:14000/my-account/37f411a4d14bdd28"
    assert account.email == "admin@sample.test"
    assert account.source == str(home / "ca/127.0.0.1/dir/account.key")
    key = serialization.load_pem_private_key(account.key_pem.encode(), None)
    assert key.curve.name == "secp256r1"
    assert all(cert.account is account for cert in found.certificates)


def test_it_reads_the_webroot_certificate_with_its_install_target(home):
    cert = certificate(read_home(home), "sample.test_ecc")

    assert cert.problems == [] and cert.notes == []
    assert cert.source == str(home / "sample.test_ecc/sample.test.conf")
    assert cert.domains == ["sample.test", "www.sample.test"]
    assert cert.key_type == "ec256"
    assert (cert.challenge, cert.webroot) == ("http-01-webroot", "/var/www/sample")
    assert sans(cert.cert_pem) == ["sample.test", "www.sample.test"]
    assert cert.chain_pem == (home / "sample.test_ecc/ca.cer").read_text().strip() + "\n"
    assert cert.key_pem == (home / "sample.test_ecc/sample.test.key").read_text()
    assert cert.install.paths() == {
        "key_path": "/etc/nginx/ssl/sample/sample.key", "cert_path": "/etc/nginx/ssl/sample/cert.cer",
        "chain_path": "/etc/nginx/ssl/sample/ca.cer", "fullchain_path": "/etc/nginx/ssl/sample/fullchain.cer"}
    assert cert.install.reload_command == "systemctl reload nginx && echo 'reloaded'"
    assert cert.next_renewal_at == utc("2026-12-25T22:53:37")


def test_it_reads_the_cloudflare_certificate_with_its_credentials(home):
    cert = certificate(read_home(home), "*.apps.sample.test")

    assert cert.problems == []
    assert cert.domains == ["*.apps.sample.test", "apps.sample.test"]
    assert cert.key_type == "rsa4096"
    assert (cert.challenge, cert.dns_provider, cert.dns_source) == ("dns-01", "cloudflare", "acme.sh dns_cf")
    assert cert.dns_credentials == {"auth_token": CF_TOKEN, "zone_id": "372e67954025e0ba6aaa6d586b9e0b59"}
    assert cert.install is None
    assert cert.next_renewal_at == utc("2026-12-25T22:53:48")
    notes = {(note.line, note.message.split(" ")[0]) for note in cert.notes}
    assert notes == {(11, "CF_Account_ID"), (13, "Le_DNSSleep")}
    assert all(CF_TOKEN not in str(note) for note in cert.notes)


def test_it_reads_the_standalone_certificate_and_notes_acme_sh_port(home):
    cert = certificate(read_home(home), "status.sample.test_ecc")

    assert cert.problems == []
    assert cert.domains == ["status.sample.test"]
    assert cert.key_type == "ec384"
    assert cert.challenge == "http-01-standalone"
    assert cert.next_renewal_at == utc("2026-12-25T22:53:55")
    [note] = cert.notes
    assert note.line == 8 and "Le_HTTPPort is 5002" in note.message and "CERTPANEL_STANDALONE_PORT" in note.message


def test_a_corrupted_line_blocks_only_its_certificate(home):
    conf = home / "status.sample.test_ecc/status.sample.test.conf"
    lines = conf.read_text().splitlines()
    lines[3] = "Le_PreHook='echo unterminated"
    conf.write_text("\n".join(lines) + "\n")

    found = read_home(home)

    [problem] = certificate(found, "status.sample.test_ecc").problems
    assert (problem.path, problem.line) == (str(conf), 4)
    assert "Le_PreHook=" in problem.message and "unterminated" not in problem.message
    assert str(problem).startswith(f"{conf}:4: ")
    assert certificate(found, "sample.test_ecc").problems == []
    assert certificate(found, "*.apps.sample.test").problems == []


def test_a_missing_key_file_blocks_only_its_certificate(home):
    (home / "sample.test_ecc/sample.test.key").unlink()

    found = read_home(home)

    [problem] = certificate(found, "sample.test_ecc").problems
    assert problem.path == str(home / "sample.test_ecc/sample.test.key") and "is missing" in problem.message
    assert [c.problems for c in found.certificates if c.name != "sample.test_ecc"] == [[], []]


def test_a_key_of_another_certificate_is_a_problem(home):
    shutil.copy(home / "status.sample.test_ecc/status.sample.test.key", home / "sample.test_ecc/sample.test.key")

    problems = certificate(read_home(home), "sample.test_ecc").problems

    assert any("does not belong to sample.test.cer" in p.message for p in problems)


def test_bad_base64_is_reported_with_its_line(home):
    conf = home / "sample.test_ecc/sample.test.conf"
    text = conf.read_text().replace("c3lzdGVtY3RsIHJlbG9hZCBuZ2lueCAmJiBlY2hvICdyZWxvYWRlZCc=", "%%%not-base64")
    conf.write_text(text)

    [problem] = certificate(read_home(home), "sample.test_ecc").problems

    assert problem.line == 19 and "Le_ReloadCmd" in problem.message and "base64" in problem.message


def test_a_bad_line_in_account_conf_is_reported_and_the_rest_read(home):
    account_conf = home / "account.conf"
    account_conf.write_text("garbage line here\nACCOUNT_EMAIL='ops@sample.test'\n")
    (home / "ca/127.0.0.1/dir/ca.conf").unlink()  # the e-mail then comes from account.json
    (home / "ca/127.0.0.1/dir/account.json").unlink()

    found = read_home(home)

    [problem] = found.problems
    assert (problem.path, problem.line) == (str(account_conf), 1)
    assert found.accounts[0].email == "ops@sample.test"
    assert found.accounts[0].account_url == ""
    assert all(cert.problems == [] for cert in found.certificates)


def test_saved_credentials_come_from_account_conf_and_the_domain_conf_wins(home):
    conf = home / "*.apps.sample.test/*.apps.sample.test.conf"
    conf.write_text("\n".join(line for line in conf.read_text().splitlines() if not line.startswith("CF_")) + "\n")
    (home / "account.conf").write_text("SAVED_CF_Token='saved-token'\nSAVED_CF_Zone_ID='saved-zone'\n"
                                       "CF_Zone_ID='plain-zone'\n")

    cert = certificate(read_home(home), "*.apps.sample.test")
    assert cert.dns_credentials == {"auth_token": "saved-token", "zone_id": "plain-zone"}

    conf.write_text(conf.read_text() + "CF_Token='domain-token'\n")
    cert = certificate(read_home(home), "*.apps.sample.test")
    assert cert.dns_credentials == {"auth_token": "domain-token", "zone_id": "plain-zone"}


def test_missing_credentials_name_what_acme_sh_would_have_saved(home):
    conf = home / "*.apps.sample.test/*.apps.sample.test.conf"
    conf.write_text(conf.read_text().replace("CF_Token=", "CF_Other="))

    [problem] = certificate(read_home(home), "*.apps.sample.test").problems

    assert problem.line == 3
    assert "dns_cf credentials are missing" in problem.message and "CF_Token or CF_Key, CF_Email" in problem.message


def test_a_dns_api_without_provider_is_a_problem(home):
    conf = home / "*.apps.sample.test/*.apps.sample.test.conf"
    conf.write_text(conf.read_text().replace("Le_Webroot='dns_cf'", "Le_Webroot='dns_acmedns'"))

    [problem] = certificate(read_home(home), "*.apps.sample.test").problems

    assert "dns_acmedns has no CertPanel DNS provider" in problem.message and "upload" in problem.message


def write_domain(home, name, **settings):
    """A certificate folder as acme.sh leaves it, with the fixture's files and these Le_* settings."""
    folder = home / name
    shutil.copytree(home / "status.sample.test_ecc", folder)
    for old in folder.glob("status.sample.test.*"):
        old.rename(folder / old.name.replace("status.sample.test", name.removesuffix("_ecc")))
    base = {"Le_Domain": "status.sample.test", "Le_Alt": "no", "Le_API": PEBBLE, "Le_Keylength": "ec-384"}
    text = "".join(f"{key}='{value}'\n" for key, value in {**base, **settings}.items())
    (folder / f"{name.removesuffix('_ecc')}.conf").write_text(text)
    return folder


def read_one(home, name):
    return certificate(read_home(home), name)


def dummy(variable):
    # OVH's endpoint is a name from a list the provider checks; the rest are free text.
    return "ovh-ca" if variable == "OVH_END_POINT" else f"value-of-{variable}"


@pytest.mark.parametrize("api_name", sorted(acmesh_dns.DNS_APIS))
def test_every_dns_api_maps_onto_its_provider_fields(home, tmp_path, api_name):
    api = acmesh_dns.DNS_APIS[api_name]
    settings = {name: dummy(name) for name in [*api.credentials[0], *api.optional]}
    expected = {field: dummy(name) for name, field in {**api.credentials[0], **api.optional}.items()}
    if api.key_file:
        key_file = tmp_path / "tsig.key"
        key_file.write_text('key "acme-key" {\n\talgorithm hmac-sha512;\n\tsecret "c2VjcmV0";\n};\n')
        settings[api.key_file] = str(key_file)
        settings["NSUPDATE_SERVER_PORT"] = "5353"
        expected.update(port="5353", tsig_key_name="acme-key", tsig_algorithm="hmac-sha512", tsig_secret="c2VjcmV0")
    write_domain(home, "d.sample.test", Le_Webroot=api_name, **settings)

    cert = read_one(home, "d.sample.test")

    assert cert.problems == []
    assert (cert.challenge, cert.dns_provider, cert.dns_source) == ("dns-01", api.provider, f"acme.sh {api_name}")
    assert cert.dns_credentials == {**expected, **api.fixed}
    cls = provider_class(api.provider)
    assert set(cert.dns_credentials) <= {f.name for f in cls.fields}
    cls(cert.dns_credentials)  # the provider takes them: every required field is filled


def test_cloudflare_global_key_is_the_second_choice(home):
    write_domain(home, "d.sample.test", Le_Webroot="dns_cf", CF_Key="global-key", CF_Email="me@sample.test")

    cert = read_one(home, "d.sample.test")

    assert cert.dns_credentials == {"auth_token": "global-key", "auth_username": "me@sample.test"}


def test_huawei_iam_user_maps_onto_the_native_provider(home):
    write_domain(home, "d.sample.test", Le_Webroot="dns_huaweicloud", HUAWEICLOUD_Username="bot",
                 HUAWEICLOUD_Password="pw", HUAWEICLOUD_DomainName="acct")

    cert = read_one(home, "d.sample.test")

    assert cert.dns_credentials == {"iam_username": "bot", "iam_password": "pw", "iam_domain_name": "acct",
                                    "region": "ap-southeast-1"}


def test_a_blocking_variable_is_a_problem_at_its_line(home):
    write_domain(home, "d.sample.test", Le_Webroot="dns_inwx", INWX_User="u", INWX_Password="p",
                 INWX_Shared_Secret="otp-secret")

    [problem] = read_one(home, "d.sample.test").problems

    assert problem.line == 8 and "two-factor" in problem.message and "otp-secret" not in problem.message


def test_nsupdate_key_file_that_is_missing_is_named(home, tmp_path):
    missing = tmp_path / "gone.key"
    write_domain(home, "d.sample.test", Le_Webroot="dns_nsupdate", NSUPDATE_SERVER="127.0.0.1")
    (home / "account.conf").write_text(f"SAVED_NSUPDATE_KEY='{missing}'\n")

    [problem] = read_one(home, "d.sample.test").problems

    assert problem.path == str(missing) and f"{home / 'account.conf'}:1" in problem.message


TSIG_KEY = 'key "acme-key" {\n\talgorithm hmac-sha512;\n\tsecret "c2VjcmV0";\n};\n'


def test_confined_a_key_file_outside_the_home_is_not_read(home, tmp_path):
    """An uploaded home's NSUPDATE_KEY is another machine's path: this server's file there is not used."""
    server_file = tmp_path / "server.key"
    server_file.write_text(TSIG_KEY)
    write_domain(home, "d.sample.test", Le_Webroot="dns_nsupdate", NSUPDATE_SERVER="127.0.0.1")
    (home / "account.conf").write_text(f"SAVED_NSUPDATE_KEY='{server_file}'\n")

    cert = certificate(read_home(home, confined=True), "d.sample.test")

    [problem] = cert.problems
    assert (problem.path, problem.line) == (str(home / "account.conf"), 1)
    assert f"NSUPDATE_KEY names {server_file}, outside the uploaded acme.sh home" in problem.message
    assert f"put the key file into the archive as {home / 'server.key'}" in problem.message
    assert "change this line to SAVED_NSUPDATE_KEY='server.key'" in problem.message
    assert "manage.py import_acmesh" in problem.message
    assert cert.dns_credentials == {} and "c2VjcmV0" not in str(cert)
    # The command reads the server's own home: there the file is read.
    assert certificate(read_home(home), "d.sample.test").dns_credentials["tsig_secret"] == "c2VjcmV0"


@pytest.mark.parametrize("named", ["nsupdate.key", "{home}/nsupdate.key"])
def test_confined_a_key_file_inside_the_home_is_read(home, named):
    (home / "nsupdate.key").write_text(TSIG_KEY)
    write_domain(home, "d.sample.test", Le_Webroot="dns_nsupdate", NSUPDATE_SERVER="127.0.0.1",
                 NSUPDATE_KEY=named.format(home=home))

    cert = certificate(read_home(home, confined=True), "d.sample.test")

    assert cert.problems == [] and cert.dns_credentials["tsig_key_name"] == "acme-key"


def test_confined_a_link_or_dotdot_cannot_lead_out_of_the_home(home, tmp_path):
    (tmp_path / "server.key").write_text(TSIG_KEY)
    (home / "link.key").symlink_to(tmp_path / "server.key")
    write_domain(home, "a.sample.test", Le_Webroot="dns_nsupdate", NSUPDATE_SERVER="127.0.0.1",
                 NSUPDATE_KEY="link.key")
    write_domain(home, "b.sample.test", Le_Webroot="dns_nsupdate", NSUPDATE_SERVER="127.0.0.1",
                 NSUPDATE_KEY="../server.key")

    found = read_home(home, confined=True)

    for name in ("a.sample.test", "b.sample.test"):
        [problem] = certificate(found, name).problems
        assert "outside the uploaded acme.sh home" in problem.message and problem.line == 7


def test_bind_key_files_as_tsig_keygen_writes_them():
    text = 'key "ddns-key.example.com" {\n\talgorithm hmac-sha256;\n\tsecret "bWFkZS11cA==";\n};\n'
    assert parse_bind_key(text) == {"tsig_key_name": "ddns-key.example.com", "tsig_algorithm": "hmac-sha256",
                                    "tsig_secret": "bWFkZS11cA=="}
    assert parse_bind_key("# a comment only\n") is None


@pytest.mark.parametrize(("webroot", "challenge", "server_config", "problem"), [
    ("nginx:/etc/nginx/conf.d/status.conf", "http-01-nginx", "/etc/nginx/conf.d/status.conf", ""),
    ("nginx:", "http-01-nginx", "", "give the nginx config file"),
    ("apache", "http-01-apache", "", "give the Apache config file"),
    ("dns", "dns-01-manual", "", ""),
    ("alpn", "", "", "has no CertPanel method"),
    ("/var/www/a,/var/www/b", "", "", "a different method per name"),
])
def test_validation_modes(home, webroot, challenge, server_config, problem):
    write_domain(home, "d.sample.test", Le_Webroot=webroot)

    cert = read_one(home, "d.sample.test")

    assert (cert.challenge, cert.server_config) == (challenge, server_config)
    assert [p.line for p in cert.problems] == ([5] if problem else [])
    assert all(problem in p.message for p in cert.problems)


def test_one_challenge_alias_for_all_names(home):
    write_domain(home, "d.sample.test", Le_Alt="x.sample.test", Le_Webroot="dns_hetzner", HETZNER_Token="t",
                 Le_ChallengeAlias="alias.example.net,alias.example.net")
    assert read_one(home, "d.sample.test").challenge_alias == "alias.example.net"

    write_domain(home, "e.sample.test", Le_Webroot="dns_hetzner", HETZNER_Token="t", Le_ChallengeAlias="=alias.net")
    [problem] = read_one(home, "e.sample.test").problems
    assert "--domain-alias" in problem.message


def test_hooks_become_notes_and_a_renew_hook_without_reload_command_reloads(home):
    encoded = "__ACME_BASE64__START_" + base64.b64encode(b"service nginx force-reload").decode() + \
        "__ACME_BASE64__END_"
    write_domain(home, "d.sample.test", Le_Webroot="no", Le_RenewHook=encoded, Le_PreHook="echo pre",
                 Le_DeployHook="haproxy,docker,", Le_NextRenewTimeStr="2027-01-02T03:04:05Z")

    cert = read_one(home, "d.sample.test")

    assert cert.problems == []
    assert cert.install.reload_command == "service nginx force-reload" and cert.install.paths() == {}
    assert cert.next_renewal_at == utc("2027-01-02T03:04:05")
    messages = " | ".join(note.message for note in cert.notes)
    assert "Le_PreHook (echo pre)" in messages and "(haproxy, docker)" in messages


def test_a_ca_without_account_blocks_its_certificates(home):
    write_domain(home, "d.sample.test", Le_Webroot="no", Le_API="https://acme.example.net/directory")

    [problem] = read_one(home, "d.sample.test").problems

    assert problem.line == 3 and "ca/acme.example.net/directory/" in problem.message


def test_ca_folders_follow_acme_sh_and_the_old_layout_is_accepted(home):
    assert ca_folder("https://127.0.0.1:14000/dir") == "127.0.0.1/dir"
    assert ca_folder("https://acme-v02.api.letsencrypt.org/directory") == "acme-v02.api.letsencrypt.org/directory"
    old_layout = home / "ca/127.0.0.1"  # acme.sh before 2.9 kept the account per host only
    for path in (old_layout / "dir").iterdir():
        path.rename(old_layout / path.name)
    (old_layout / "dir").rmdir()

    found = read_home(home)

    [account] = found.accounts
    assert account.directory_url == PEBBLE and account.source == str(home / "ca/127.0.0.1/account.key")
    assert all(cert.account is account and cert.problems == [] for cert in found.certificates)


def test_a_ca_folder_no_conf_names_gets_https_and_its_path(home):
    shutil.copytree(home / "ca/127.0.0.1/dir", home / "ca/acme.example.net/v2/dir")

    urls = sorted(account.directory_url for account in read_home(home).accounts)

    assert urls == [PEBBLE, "https://acme.example.net/v2/dir"]


def test_folders_that_are_not_certificates_are_skipped(home):
    (home / "deploy").mkdir()
    (home / "deploy/deploy.conf").write_text("x='y'\n")
    (home / "leftover.example").mkdir()

    names = sorted(cert.name for cert in read_home(home).certificates)

    assert names == ["*.apps.sample.test", "sample.test_ecc", "status.sample.test_ecc"]


def test_a_path_that_is_not_a_directory_is_one_problem(tmp_path):
    found = read_home(tmp_path / "nowhere")
    assert [p.path for p in found.problems] == [str(tmp_path / "nowhere")] and found.certificates == []


# -- through the writer: what is really stored ---------------------------------------------------------------


def test_a_corrupted_line_and_a_missing_key_are_reported_and_the_other_certificate_is_stored(
        home, tmp_path, settings, django_user_model, queued):
    """The done-when on the home acme.sh wrote, through `manage.py import_acmesh`: the broken
    certificates are named with path and line (file), the third is stored with its install
    target and reload preset, and a second run adds nothing."""
    from django.core.management import CommandError, call_command

    from certs.models import AcmeAccount, Certificate, DnsCredential, InstallTarget, ReloadPreset

    www, ssl = tmp_path / "www" / "sample", tmp_path / "ssl" / "sample"
    www.mkdir(parents=True)
    ssl.mkdir(parents=True)
    settings.WEBROOT_ROOTS, settings.INSTALL_ROOTS = [tmp_path / "www"], [tmp_path / "ssl"]
    webroot_conf = home / "sample.test_ecc/sample.test.conf"
    webroot_conf.write_text(webroot_conf.read_text().replace("/var/www/sample", str(www))
                            .replace("/etc/nginx/ssl/sample", str(ssl)))
    standalone_conf = home / "status.sample.test_ecc/status.sample.test.conf"
    lines = standalone_conf.read_text().splitlines()
    lines[3] = "SAVED_CF_Token='leaked-secret-value"  # unbalanced quote on a line that holds a secret
    standalone_conf.write_text("\n".join(lines) + "\n")
    (home / "*.apps.sample.test/*.apps.sample.test.key").unlink()
    django_user_model.objects.create_superuser("root", password="pw-root-123")

    def run():
        out = io.StringIO()
        with pytest.raises(CommandError) as failed:
            call_command("import_acmesh", str(home), stdout=out)
        assert failed.value.returncode == 1  # something was not imported
        return out.getvalue()

    first = run()

    assert list(Certificate.objects.values_list("domains", flat=True)) == [["sample.test", "www.sample.test"]]
    assert (AcmeAccount.objects.count(), InstallTarget.objects.count(), ReloadPreset.objects.count()) == (1, 1, 1)
    assert not DnsCredential.objects.exists()  # the Cloudflare certificate's credential went with it
    assert "created: certificate sample.test_ecc (sample.test, www.sample.test)" in first
    assert "not imported: certificate status.sample.test_ecc" in first
    assert f"{standalone_conf}:4: SAVED_CF_Token= is not a KEY='value' assignment" in first
    assert "not imported: certificate *.apps.sample.test" in first
    assert f"{home}/*.apps.sample.test/*.apps.sample.test.key: is missing" in first
    assert "leaked-secret-value" not in first and CF_TOKEN not in first and "PRIVATE KEY" not in first

    second = run()

    assert Certificate.objects.count() == 1 and DnsCredential.objects.count() == 0
    assert (AcmeAccount.objects.count(), InstallTarget.objects.count(), ReloadPreset.objects.count()) == (1, 1, 1)
    assert "already imported: certificate sample.test_ecc (sample.test, www.sample.test)" in second
