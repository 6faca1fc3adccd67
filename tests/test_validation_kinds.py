"""One validation function per kind of value (panel/toolkit/validation.py, and ReloadPreset.clean for
presets), tested directly: domain, path, URL (upstream and outbound), preset."""

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from certs.models import ReloadPreset
from panel.toolkit import validation

# --- domain


@pytest.mark.parametrize("given, stored", [
    ("Example.COM.", "example.com"),
    ("münchen.de", "xn--mnchen-3ya.de"),
    ("*.bücher.example", "*.xn--bcher-kva.example"),
    ("例子.测试", "xn--fsqu00a.xn--0zwm56d"),
    ("xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
])
def test_a_domain_is_stored_lower_case_and_as_punycode(given, stored):
    assert validation.normalize_domain(given) == stored


@pytest.mark.parametrize("bad, says", [
    ("exa mple.com", "not allowed"), ("a..b.com", "empty label"), ("192.0.2.1", "IP address"),
    ("localhost", "two labels"), ("*.*.example.com", "whole first label"), ("-a.example.com", "inner hyphens"),
    ("ex$ample.com", "not allowed"), ("a" * 64 + ".com", "longer than 63"),
])
def test_a_bad_domain_says_what_is_wrong(bad, says):
    with pytest.raises(ValidationError, match=says):
        validation.normalize_domain(bad)


def test_a_wildcard_is_refused_where_not_allowed():
    with pytest.raises(ValidationError, match="not allowed here"):
        validation.normalize_domain("*.example.com", allow_wildcard=False)


def test_a_domain_list_is_deduplicated_after_normalising():
    assert validation.normalize_domain_list(["münchen.de", "XN--MNCHEN-3YA.DE"]) == ["xn--mnchen-3ya.de"]


# --- path


@pytest.mark.parametrize("path", ["/srv/www/site", "/srv/www", "/srv/www//site/./public"])
def test_a_path_under_a_root_is_accepted_normalised(path):
    assert validation.validate_path_under(path, [Path("/srv/www")], "root") == Path(path.replace("//", "/")
                                                                                   .replace("/./", "/"))


@pytest.mark.parametrize("path, says", [
    ("srv/www/a", "absolute"), ("/srv/www/../etc", "“..”"), ("/srv/www2/a", "allowed directories"),
    ("/srv/www/a;b", "not allowed"), ("/srv/www/a b", "not allowed"), ("/srv/www/$x", "not allowed"), ("", "Give"),
])
def test_a_bad_path_says_what_is_wrong(path, says):
    with pytest.raises(ValidationError, match=says):
        validation.validate_path_under(path, [Path("/srv/www")], "root")


def test_an_admins_document_root_may_be_anywhere_but_still_clean():
    assert validation.validate_document_root("/opt/app", validation.ANYWHERE) == "/opt/app"
    with pytest.raises(ValidationError):
        validation.validate_document_root("/opt/app", [Path("/srv/www")])
    with pytest.raises(ValidationError, match="“..”"):
        validation.validate_document_root("/opt/../etc", validation.ANYWHERE)


def test_a_link_inside_a_root_cannot_lead_out_of_it(tmp_path):
    root, elsewhere = tmp_path / "home" / "alice", tmp_path / "home" / "bob"
    root.mkdir(parents=True)
    elsewhere.mkdir()
    (root / "b").symlink_to(elsewhere)
    with pytest.raises(ValidationError, match="symbolic link"):
        validation.validate_path_within(str(root / "b" / "site"), [root], "document root")
    # A root that is itself a link counts as where it leads.
    (tmp_path / "www").symlink_to(root)
    assert validation.validate_path_within(str(tmp_path / "www" / "site"), [tmp_path / "www"], "root")
    # An install file may itself be a link (certbot's live/ files): only its directory is followed.
    (root / "cert.pem").symlink_to(elsewhere / "cert1.pem")
    with pytest.raises(ValidationError, match="symbolic link"):
        validation.validate_path_within(str(root / "cert.pem"), [root], "install path")
    assert validation.validate_path_within(str(root / "cert.pem"), [root], "install path", name_may_be_link=True)


@pytest.mark.parametrize("root, shared", [("/srv/www/a", True), ("/srv/www/a/public", True), ("/srv/www", True),
                                          ("/srv/www/ab", False), ("/srv/www/b", False)])
def test_a_root_may_not_overlap_another_owners(root, shared):
    if shared:
        with pytest.raises(ValidationError, match="another account"):
            validation.check_root_not_shared(root, ["/srv/www/a"])
    else:
        validation.check_root_not_shared(root, ["/srv/www/a"])


# --- URL


@pytest.mark.parametrize("given, stored", [
    ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),  # loopback upstreams are normal for a hosting panel
    ("https://app.internal.example/api", "https://app.internal.example/api"),
    ("http://backend:8080", "http://backend:8080"),
    ("http://bücher.example:8080/x", "http://xn--bcher-kva.example:8080/x"),
])
def test_an_upstream_is_accepted_and_an_idn_host_becomes_punycode(given, stored):
    assert validation.validate_upstream(given) == stored


@pytest.mark.parametrize("bad", ["ftp://a.example", "http://", "http://a.example/?q=1", "http://u:p@a.example",
                                 "http://unix:/run/app.sock", "http://a.example:99999", "http://a.example;"])
def test_a_bad_upstream_is_refused(bad):
    with pytest.raises(ValidationError):
        validation.validate_upstream(bad)


@pytest.mark.parametrize("url", ["json://127.0.0.1/x", "json://127.1.2.3/x", "json://10.0.0.1/x", "json://172.16.0.1/x",
                                 "json://192.168.0.1/x", "json://169.254.169.254/x", "json://100.64.0.1/x",
                                 "json://0.0.0.0/x", "json://[::1]/x", "json://[fe80::1]/x", "json://[fd00::1]/x",
                                 "json://[::ffff:10.0.0.1]/x", "json://LOCALHOST/x", "json://api.localhost/x",
                                 "json://224.0.0.1/x"])
def test_an_outbound_url_into_the_servers_network_is_for_admins_only(url, db):  # db: the allow-list
    with pytest.raises(ValidationError, match="administrator"):
        validation.validate_outbound_url(url, allow_internal=False)
    assert validation.validate_outbound_url(url, allow_internal=True) == url


@pytest.mark.parametrize("url", ["json://hooks.example.net/x", "json://8.8.8.8/x", "slack://T000/B000/XXXX",
                                 "tgram://123456:ABC/987"])
def test_an_outbound_url_to_the_internet_is_for_everyone(url, db):
    assert validation.validate_outbound_url(url, allow_internal=False) == url


# --- preset


@pytest.mark.parametrize("command, timeout, field", [
    ("systemctl reload nginx", 60, "command"), ([], 60, "command"), (["systemctl", "reload"], 60, "command"),
    ([""], 60, "command"), (["/bin/true"], 0, "timeout_seconds"), (["/bin/true"], 3601, "timeout_seconds"),
])
def test_a_bad_preset_names_its_field(command, timeout, field):
    with pytest.raises(ValidationError) as raised:
        ReloadPreset(name="x", command=command, timeout_seconds=timeout).clean()
    assert field in raised.value.message_dict


def test_a_good_preset_passes():
    ReloadPreset(name="x", command=["/usr/bin/systemctl", "reload", "nginx"], timeout_seconds=30).clean()
