"""Bad input gets a 400 with a message on the field, and nothing is stored."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from certs.models import AcmeAccount, Certificate, Order
from panel.models import Site

BAD_DOMAINS = [
    "exa mple.com",
    "example.com;",
    "example.com{",
    "example.com\nserver_name evil.com",
    "a..example.com",
    "a" * 250 + ".com",
    ("a" * 60 + ".") * 4 + "example.com",
    "x" * 64 + ".example.com",
    "*",
    "*.*.example.com",
    "192.0.2.1",
    "[2001:db8::1]",
    "",
    "localhost",
    "-bad.example.com",
    "ex_ample.com",
]


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def account(user):
    return AcmeAccount.objects.create(
        owner=user, directory_url="https://ca.example/dir", account_key="unused", account_url="https://ca.example/a/1"
    )


@pytest.fixture
def www_root(settings, tmp_path, home_root, user):
    """The user's home: a user's document roots lie inside it (ALLOWED_ROOTS are for administrators)."""
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    return home_root / user.get_username()


@pytest.mark.parametrize("bad", BAD_DOMAINS)
def test_it_rejects_bad_site_domains(api, www_root, bad):
    response = api.post("/api/v1/sites/", {"domains": ["ok.example.com", bad], "root": str(www_root / "a")},
                        format="json")
    assert response.status_code == 400
    assert response.json()["domains"], response.json()
    assert Site.objects.count() == 0


@pytest.mark.parametrize("bad", BAD_DOMAINS)
def test_it_rejects_bad_certificate_domains(api, account, bad):
    response = api.post("/api/v1/certificates/", {"domains": [bad], "acme_account": account.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["domains"]
    assert Certificate.objects.count() == 0 and Order.objects.count() == 0


def test_it_rejects_unknown_key_type(api, account):
    response = api.post("/api/v1/certificates/", {"domains": ["a.example.com"], "acme_account": account.pk,
                                                  "key_type": "dsa1024"}, format="json")
    assert response.status_code == 400
    assert "key_type" in response.json()
    assert Certificate.objects.count() == 0


def test_it_rejects_wildcards_for_http01(api, account):
    response = api.post("/api/v1/certificates/", {"domains": ["*.example.com"], "acme_account": account.pk},
                        format="json")
    assert response.status_code == 400
    assert "DNS-01" in response.json()["domains"][0]


@pytest.mark.parametrize("root", ["/etc", "/tmp/../etc", "relative/path", "/var/www2", "/var/www/a;b"])
def test_it_rejects_document_roots_outside_the_allowed_roots(api, www_root, root):
    response = api.post("/api/v1/sites/", {"domains": ["a.example.com"], "root": root}, format="json")
    assert response.status_code == 400
    assert response.json()["root"]
    assert Site.objects.count() == 0


def test_it_rejects_a_root_that_climbs_out_of_an_allowed_root(api, www_root):
    response = api.post("/api/v1/sites/", {"domains": ["a.example.com"], "root": f"{www_root}/../../etc"},
                        format="json")
    assert response.status_code == 400
    assert Site.objects.count() == 0


@pytest.mark.parametrize("upstream", ["ftp://x.example", "http://", "http://a b", "http://x.example/;evil",
                                      "http://user:pw@x.example", "127.0.0.1:3000",
                                      "http://unix:/var/run/docker.sock:/"])
def test_it_rejects_bad_upstreams(api, upstream):
    response = api.post("/api/v1/sites/", {"domains": ["a.example.com"], "proxy_pass": upstream}, format="json")
    assert response.status_code == 400
    assert response.json()["proxy_pass"]


def test_it_wants_at_most_one_of_root_and_proxy(api, www_root):
    # Neither is a static site in the owner's home (tests/test_homes.py).
    both = api.post("/api/v1/sites/", {"domains": ["a.example.com"], "root": str(www_root),
                                       "proxy_pass": "http://127.0.0.1:3000"}, format="json")
    assert both.status_code == 400
    assert Site.objects.count() == 0


def test_it_stores_idn_names_as_punycode_and_lower_case(api, www_root):
    response = api.post("/api/v1/sites/", {"domains": ["Bücher.Example", "WWW.example.com."],
                                           "root": str(www_root / "b")}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["domains"] == ["xn--bcher-kva.example", "www.example.com"]


def test_a_name_belongs_to_one_site_only(api, www_root, user):
    first = api.post("/api/v1/sites/", {"domains": ["a.example.com"], "root": str(www_root / "a")}, format="json")
    second = api.post("/api/v1/sites/", {"domains": ["b.example.com", "a.example.com"],
                                         "root": str(www_root / "b")}, format="json")
    assert first.status_code == 201
    assert second.status_code == 400
    assert "a.example.com" in second.json()["domains"][0]
    assert Site.objects.count() == 1


def test_certificate_names_must_belong_to_the_site(api, account, www_root):
    site = api.post("/api/v1/sites/", {"domains": ["a.example.com"], "root": str(www_root / "a")}, format="json")
    response = api.post("/api/v1/certificates/", {"domains": ["a.example.com", "b.example.com"],
                                                  "acme_account": account.pk, "site": site.json()["id"]},
                        format="json")
    assert response.status_code == 400
    assert "b.example.com" in response.json()["domains"][0]


def test_a_foreign_account_reads_as_missing(api, db):
    bob = get_user_model().objects.create_user("bob")
    foreign = AcmeAccount.objects.create(owner=bob, directory_url="https://ca.example/dir", account_key="x",
                                         account_url="https://ca.example/a/2")
    response = api.post("/api/v1/certificates/", {"domains": ["a.example.com"], "acme_account": foreign.pk},
                        format="json")
    assert response.status_code == 400
    assert "acme_account" in response.json()
    assert api.get(f"/api/v1/acme-accounts/{foreign.pk}/").status_code == 404


def test_a_user_cannot_ask_for_a_certificate_for_someone_elses_domain(api, account, www_root):
    bob = get_user_model().objects.create_user("bob")
    Site.objects.create(owner=bob, domains=["bob.example.com"], root=str(www_root / "bob"))
    from panel.models import SiteDomain

    SiteDomain.objects.create(site=Site.objects.get(), name="bob.example.com")
    for names in (["bob.example.com"], ["unclaimed.example.com"]):
        response = api.post("/api/v1/certificates/", {"domains": names, "acme_account": account.pk}, format="json")
        assert response.status_code == 400
        assert names[0] in response.json()["domains"][0]
    assert Certificate.objects.count() == 0


def test_a_malformed_eab_key_is_refused_without_being_echoed(api):
    secret = "not base64!! secret-value"
    response = api.post("/api/v1/acme-accounts/", {"directory_url": "https://ca.example/dir",
                                                   "eab_kid": "kid-1", "eab_hmac_key": secret}, format="json")
    assert response.status_code == 400
    assert response.json()["eab_hmac_key"]
    assert "secret-value" not in response.text
    assert AcmeAccount.objects.count() == 0
