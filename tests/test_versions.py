"""Certificate versions: downloads, PFX, revocation and re-issue, and the renewal overview.

The CA is a fake at the one seam (certs.accounts.client_for); nothing reaches Celery
(tests/conftest.py `queued`). Certificates are real X.509, made here: a leaf under an
intermediate, so "the key matches the certificate" and "the PFX opens" mean something.
"""

import datetime
import re
from types import SimpleNamespace
from unittest import mock

import pytest
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from certs import accounts
from certs.acme import AcmeClient, AcmeError
from certs.models import AcmeAccount, Certificate, CertificateVersion, Order
from panel.hosting import sites
from panel.models import Site

pytestmark = pytest.mark.usefixtures("queued")  # tests/conftest.py

UI_FORMATS = ("cert", "fullchain", "pem-key", "pfx")


# --- real certificates


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_chain(names, days_left=60, lifetime=90):
    """(leaf PEM, fullchain PEM, key PEM, intermediate) for `names`, expiring in `days_left` days."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = (
        x509.CertificateBuilder().subject_name(_name("Test Intermediate")).issuer_name(_name("Test Intermediate"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=400)).not_valid_after(now + datetime.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + datetime.timedelta(days=days_left, hours=1)
    leaf = (
        x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(intermediate.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_after - datetime.timedelta(days=lifetime)).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return _pem(leaf), _pem(leaf) + _pem(intermediate), key_pem, intermediate


def make_account(owner):
    return AcmeAccount.objects.create(owner=owner, directory_url="https://ca.test/directory", account_key="unused",
                                      account_url=f"https://ca.test/acct/{owner.pk}")


def add_version(certificate, days_left=60, current=True):
    leaf_pem, chain_pem, key_pem, _intermediate = make_chain(certificate.domains, days_left)
    leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
    order = Order.objects.create(owner=certificate.owner, certificate=certificate, status=Order.Status.VALID,
                                 finished_at=timezone.now())
    version = CertificateVersion.objects.create(
        certificate=certificate, order=order, cert_pem=leaf_pem, chain_pem=chain_pem, private_key=key_pem,
        serial=format(leaf.serial_number, "x"), issuer="CN=Test Intermediate",
        not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
    )
    if current:
        Certificate.objects.filter(pk=certificate.pk).update(current_version=version, status=Certificate.Status.VALID)
        certificate.refresh_from_db()
    return version


def make_certificate(owner, names, site=None, days_left=60, **fields):
    certificate = Certificate.objects.create(owner=owner, account=make_account(owner), domains=names, site=site,
                                             **fields)
    if days_left is not None:
        add_version(certificate, days_left)
    return certificate


@pytest.fixture
def site(alice, settings, tmp_path):
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    return sites.save_site(Site(owner=alice, domains=["a.example.com", "www.a.example.com"],
                                root=str(tmp_path / "www" / "a")))


@pytest.fixture
def certificate(alice, site):
    return make_certificate(alice, ["a.example.com", "www.a.example.com"], site=site)


@pytest.fixture
def version(certificate):
    return certificate.current_version


@pytest.fixture
def ca(monkeypatch):
    """The fake CA at the seam: records every revocation it is asked for."""
    fake = SimpleNamespace(revoked=[], error=None)

    class Client:
        def __init__(self, account):
            self.account = account

        def revoke(self, cert_pem, reason_code):
            fake.revoked.append((self.account.pk, cert_pem, reason_code))
            if fake.error:
                raise fake.error

    monkeypatch.setattr(accounts, "client_for", Client)
    return fake


def download_url(version, fmt):
    return reverse("ui:version-download", args=[version.pk, fmt])


def api_download_url(version, fmt):
    return reverse("certificate-version-download", args=[version.pk]) + f"?format={fmt}"


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def public_bytes(key_or_cert):
    return key_or_cert.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)


def key_body_lines(version):
    """The base64 lines of the private key: none of them may show up outside a download."""
    return [line for line in version.private_key.splitlines() if line and not line.startswith("-----")]


# --- downloads


def test_the_certificate_and_the_full_chain_download_as_stored_pem(alice_client, version):
    cert = alice_client.get(download_url(version, "cert"))
    assert cert.status_code == 200
    assert body(cert).decode().strip() == version.cert_pem.strip()
    assert cert["Content-Disposition"].startswith("attachment;")
    assert 'filename="a.example.com-' in cert["Content-Disposition"]

    chain = x509.load_pem_x509_certificates(body(alice_client.get(download_url(version, "fullchain"))))
    assert [c.subject.rfc4514_string() for c in chain] == ["CN=a.example.com", "CN=Test Intermediate"]


def test_the_private_key_download_is_a_never_cached_attachment_matching_the_certificate(alice_client, version):
    response = alice_client.post(download_url(version, "pem-key"))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Disposition"].startswith("attachment;") and ".key" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    key = serialization.load_pem_private_key(body(response), password=None)
    cert = x509.load_pem_x509_certificate(version.cert_pem.encode())
    assert public_bytes(key) == public_bytes(cert)


def test_the_private_key_is_never_sent_for_a_get(alice_client, version):
    for fmt in ("pem-key", "pfx"):
        response = alice_client.get(download_url(version, fmt))
        assert response.status_code == 405
        assert b"PRIVATE KEY" not in response.content


def test_the_private_key_form_is_csrf_protected(alice, version):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(download_url(version, "pem-key")).status_code == 403
    page = client.get(reverse("ui:certificate-detail", args=[version.certificate_id])).content.decode()
    form = re.search(rf'<form method="post" action="{download_url(version, "pem-key")}">(.*?)</form>', page, re.S)
    assert form and 'name="csrfmiddlewaretoken"' in form.group(1)


def test_a_pfx_opens_with_its_password_and_holds_key_certificate_and_chain(alice_client, version):
    response = alice_client.post(download_url(version, "pfx"), {"password": "correct horse"})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;") and ".pfx" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    data = body(response)
    key, cert, extra = pkcs12.load_key_and_certificates(data, b"correct horse")
    assert public_bytes(key) == public_bytes(cert)
    assert _pem(cert) == version.cert_pem
    assert [c.subject.rfc4514_string() for c in extra] == ["CN=Test Intermediate"]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(data, b"wrong")
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(data, None)


def test_a_pfx_without_a_password_is_refused_clearly(alice_client, version):
    response = alice_client.post(download_url(version, "pfx"), {"password": ""})
    assert response.status_code == 400
    assert "A PFX file needs a password" in response.content.decode()
    assert not response.streaming and not response.has_header("Content-Disposition")

    api = alice_client.post(api_download_url(version, "pfx"), {}, content_type="application/json")
    assert api.status_code == 400 and "needs a password" in api.json()["detail"]


def test_the_api_downloads_and_never_takes_a_password_in_the_url(alice_client, version):
    cert = alice_client.get(api_download_url(version, "cert"))
    assert cert.status_code == 200 and body(cert).decode().strip() == version.cert_pem.strip()
    assert alice_client.get(api_download_url(version, "pem-key")).status_code == 405

    key = alice_client.post(api_download_url(version, "pem-key"))
    assert key.status_code == 200 and "no-store" in key["Cache-Control"]
    assert public_bytes(serialization.load_pem_private_key(body(key), None)) == public_bytes(
        x509.load_pem_x509_certificate(version.cert_pem.encode()))

    pfx = alice_client.post(api_download_url(version, "pfx"), {"password": "s3cret"}, content_type="application/json")
    assert pfx.status_code == 200
    assert pkcs12.load_key_and_certificates(body(pfx), b"s3cret")[0] is not None

    in_url = alice_client.post(api_download_url(version, "pfx") + "&password=s3cret", {"password": "s3cret"},
                               content_type="application/json")
    assert in_url.status_code == 400 and "POST body" in in_url.json()["detail"]
    assert alice_client.get(reverse("certificate-version-download", args=[version.pk]) + "?format=der").status_code == 400


def test_another_users_version_is_a_404_for_every_download_and_revoke(bob_client, version, ca):
    for fmt in UI_FORMATS:
        assert bob_client.get(download_url(version, fmt)).status_code in (404, 405)
        assert bob_client.post(download_url(version, fmt), {"password": "x"}).status_code == 404
        assert bob_client.post(api_download_url(version, fmt), {"password": "x"},
                               content_type="application/json").status_code == 404
    assert bob_client.get(download_url(version, "cert")).status_code == 404
    assert bob_client.get(api_download_url(version, "fullchain")).status_code == 404
    assert bob_client.get(reverse("ui:version-revoke", args=[version.pk])).status_code == 404
    assert bob_client.post(reverse("ui:version-revoke", args=[version.pk]), {"reason": "keyCompromise"}).status_code == 404
    assert bob_client.post(reverse("certificate-version-revoke", args=[version.pk]), {"reason": "keyCompromise"},
                           content_type="application/json").status_code == 404
    for name in ("ui:certificate-detail", "ui:certificate-history"):
        assert bob_client.get(reverse(name, args=[version.certificate_id])).status_code == 404
    assert bob_client.post(reverse("ui:certificate-reissue", args=[version.certificate_id])).status_code == 404
    assert bob_client.get(reverse("certificate-versions", args=[version.certificate_id])).status_code == 404
    assert ca.revoked == []
    version.refresh_from_db()
    assert version.revoked_at is None


def test_an_admin_sees_a_customers_versions_but_never_takes_the_key(version):
    from django.test import Client

    admin = get_user_model().objects.create_superuser("root", password="pw-root-123")
    client = Client()
    client.force_login(admin)
    assert client.get(download_url(version, "cert")).status_code == 200
    assert client.get(reverse("certificate-versions", args=[version.certificate_id])).status_code == 200
    for fmt in ("pem-key", "pfx"):
        assert client.post(download_url(version, fmt), {"password": "x"}).status_code == 404
        assert client.post(api_download_url(version, fmt), {"password": "x"}).status_code == 404


# --- revocation and re-issue


def test_revoking_calls_the_ca_with_the_accounts_key_and_the_reason_code_and_stores_it(alice_client, version, ca):
    page = alice_client.get(reverse("ui:version-revoke", args=[version.pk]))
    assert page.status_code == 200 and 'value="keyCompromise"' in page.content.decode()

    response = alice_client.post(reverse("ui:version-revoke", args=[version.pk]), {"reason": "keyCompromise"})
    assert response.status_code == 302
    assert ca.revoked == [(version.certificate.account_id, version.cert_pem, 1)]
    version.refresh_from_db()
    assert version.revocation_reason == "keyCompromise"
    assert abs(version.revoked_at - timezone.now()) < datetime.timedelta(minutes=1)


@pytest.mark.parametrize("reason, code", [("unspecified", 0), ("keyCompromise", 1), ("affiliationChanged", 3),
                                          ("superseded", 4), ("cessationOfOperation", 5)])
def test_the_api_revokes_with_each_reason(alice_client, version, ca, reason, code):
    response = alice_client.post(reverse("certificate-version-revoke", args=[version.pk]), {"reason": reason},
                                 content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["revocation_reason"] == reason and response.json()["revoked_at"]
    assert [r[2] for r in ca.revoked] == [code]


def test_an_unknown_reason_and_a_second_revocation_are_refused(alice_client, version, ca):
    url = reverse("certificate-version-revoke", args=[version.pk])
    assert alice_client.post(url, {"reason": "becauseISaidSo"}, content_type="application/json").status_code == 400
    assert alice_client.post(url, {"reason": "superseded"}, content_type="application/json").status_code == 200
    again = alice_client.post(url, {"reason": "keyCompromise"}, content_type="application/json")
    assert again.status_code == 409 and "already revoked" in again.json()["detail"]
    assert len(ca.revoked) == 1
    version.refresh_from_db()
    assert version.revocation_reason == "superseded"


def test_a_ca_refusal_is_shown_in_its_words_and_nothing_is_recorded(alice_client, version, ca):
    ca.error = AcmeError("unauthorized: The key is not authorized for this certificate", problem_type="unauthorized")
    response = alice_client.post(reverse("ui:version-revoke", args=[version.pk]), {"reason": "superseded"})
    assert response.status_code == 200
    assert "The key is not authorized for this certificate" in response.content.decode()
    api = alice_client.post(reverse("certificate-version-revoke", args=[version.pk]), {"reason": "superseded"},
                            content_type="application/json")
    assert api.status_code == 400
    assert api.json()["detail"].startswith("The CA did not revoke it. The CA refused")
    assert api.json()["ca_error"] == {
        "code": "unauthorized",
        "raw": "unauthorized: The key is not authorized for this certificate"}
    ca.error = AcmeError("cannot reach the CA: connection refused", problem_type="connection", transient=True)
    api = alice_client.post(reverse("certificate-version-revoke", args=[version.pk]), {"reason": "superseded"},
                            content_type="application/json")
    assert api.status_code == 502
    version.refresh_from_db()
    assert version.revoked_at is None and version.revocation_reason == ""


def test_a_certificate_the_ca_already_revoked_is_recorded_as_revoked(alice_client, version, ca):
    ca.error = AcmeError("alreadyRevoked: Certificate already revoked", problem_type="alreadyRevoked")
    response = alice_client.post(reverse("certificate-version-revoke", args=[version.pk]),
                                 {"reason": "cessationOfOperation"}, content_type="application/json")
    assert response.status_code == 200
    version.refresh_from_db()
    assert version.revoked_at and version.revocation_reason == "cessationOfOperation"


def test_a_revoked_current_version_offers_re_issue_which_starts_a_new_order(alice_client, certificate, version, ca,
                                                                            queued, django_capture_on_commit_callbacks):
    detail = reverse("ui:certificate-detail", args=[certificate.pk])
    assert "Re-issue" not in alice_client.get(detail).content.decode()
    alice_client.post(reverse("ui:version-revoke", args=[version.pk]), {"reason": "keyCompromise"})

    html = alice_client.get(detail).content.decode()
    assert "was revoked on" in html and "Key compromise" in html
    reissue = reverse("ui:certificate-reissue", args=[certificate.pk])
    assert f'action="{reissue}"' in html
    assert f'action="{reverse("ui:version-revoke", args=[version.pk])}"' not in html  # nothing left to revoke

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reissue)
    assert response.status_code == 302 and response["Location"].startswith(
        reverse("ui:site-detail", args=[certificate.site_id]))
    order = certificate.orders.exclude(status__in=Order.FINISHED).get()
    assert not order.is_renewal
    queued.enqueue.assert_called_once()
    # A second click while that order runs starts nothing.
    alice_client.post(reissue)
    assert certificate.orders.exclude(status__in=Order.FINISHED).count() == 1


def test_the_site_page_loads_the_history_and_the_history_lists_every_version(alice_client, certificate, site):
    old = certificate.current_version
    CertificateVersion.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=60))
    new = add_version(certificate, days_left=89)
    site_page = alice_client.get(reverse("ui:site-detail", args=[site.pk])).content.decode()
    history_url = reverse("ui:certificate-history", args=[certificate.pk])
    assert f'hx-get="{history_url}" hx-trigger="load, order-finished from:body"' in site_page

    html = alice_client.get(history_url).content.decode()
    assert "<html" not in html
    assert html.index(new.serial) < html.index(old.serial)
    for v in (old, new):
        for fmt in UI_FORMATS:
            assert download_url(v, fmt) in html
    assert "In use" in html and "Previous" in html

    api = alice_client.get(reverse("certificate-versions", args=[certificate.pk])).json()
    assert [row["serial"] for row in api["results"]] == [new.serial, old.serial]
    assert [row["current"] for row in api["results"]] == [True, False]
    assert all("private_key" not in row for row in api["results"])


# --- the renewal overview


def test_the_overview_lists_a_failing_certificate_before_a_healthy_one_and_draws_the_chart(alice_client, alice):
    healthy = make_certificate(alice, ["healthy.example.com"], days_left=20,
                               next_renewal_at=timezone.now() + datetime.timedelta(days=1))
    failing = make_certificate(alice, ["failing.example.com"], days_left=50, renewal_failures=3,
                               last_error="unauthorized: Invalid response from http://failing.example.com",
                               next_renewal_at=timezone.now() + datetime.timedelta(days=5))
    make_certificate(alice, ["expired.example.com"], days_left=-3,
                     next_renewal_at=timezone.now() + datetime.timedelta(days=3))
    make_certificate(alice, ["pending.example.com"], days_left=None)

    response = alice_client.get(reverse("ui:renewal-overview"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("failing.example.com") < html.index("healthy.example.com") < html.index("expired.example.com")
    assert "Invalid response from http://failing.example.com" in html
    assert f'<time datetime="{failing.next_renewal_at.isoformat()}"' in html
    assert f'<time datetime="{healthy.next_renewal_at.isoformat()}"' in html

    svg = re.search(r"<svg\b.*?</svg>", html, re.S)
    assert svg and 'role="img"' in svg.group(0)
    counts = dict(re.findall(r'data-bucket="(\w+)">\s*<title>[^<]*: (\d+)</title>', svg.group(0)))
    assert counts == {"expired": "1", "lt7": "0", "lt14": "0", "lt30": "1", "lt60": "1", "later": "0"}
    assert "1 certificate not issued yet" in html and "1 failing renewal" in html
    assert "<script" not in svg.group(0) and "style=" not in svg.group(0)
    assert f'href="{reverse("ui:renewal-overview")}" aria-current="page"' in html


def test_the_overview_shows_only_ones_own_certificates(alice_client, bob, alice):
    make_certificate(alice, ["mine.example.com"])
    make_certificate(bob, ["theirs.example.com"], renewal_failures=1, last_error="bob's secret error")
    html = alice_client.get(reverse("ui:renewal-overview")).content.decode()
    assert "mine.example.com" in html
    assert "theirs.example.com" not in html and "bob&#x27;s secret error" not in html


def test_the_overview_takes_the_same_number_of_queries_for_many_certificates(alice_client, alice):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert alice_client.get(reverse("ui:renewal-overview")).status_code == 200
        return len(captured)

    make_certificate(alice, ["one.example.com"])
    few = queries()
    for n in range(8):
        make_certificate(alice, [f"n{n}.example.com"], renewal_failures=n % 2)
    assert queries() == few


# --- secrets stay secret


def test_the_private_key_never_appears_outside_a_download(alice_client, certificate, version, site, ca):
    lines = key_body_lines(version)
    assert lines
    pages = [
        alice_client.get(reverse("ui:site-detail", args=[site.pk])),
        alice_client.get(reverse("ui:certificate-detail", args=[certificate.pk])),
        alice_client.get(reverse("ui:certificate-history", args=[certificate.pk])),
        alice_client.get(reverse("ui:certificate-list")),
        alice_client.get(reverse("ui:renewal-overview")),
        alice_client.get(reverse("ui:version-revoke", args=[version.pk])),
        alice_client.post(download_url(version, "pfx"), {"password": ""}),
        alice_client.get(download_url(version, "pem-key")),
        alice_client.get(reverse("certificate-versions", args=[certificate.pk])),
        alice_client.get(reverse("certificate-detail", args=[certificate.pk])),
        alice_client.get(api_download_url(version, "pem-key")),
        alice_client.post(reverse("certificate-version-revoke", args=[version.pk]), {"reason": "superseded"},
                          content_type="application/json"),
    ]
    for response in pages:
        text = body(response).decode()
        assert "PRIVATE KEY" not in text, response.request["PATH_INFO"]
        assert not any(line in text for line in lines), response.request["PATH_INFO"]


# --- the ACME adapter


def test_the_acme_client_revokes_the_leaf_with_the_reason_code(version):
    client = AcmeClient("https://ca.test/directory", make_chain(["acct.test"])[2], "https://ca.test/acct/1")
    client._client = mock.Mock()
    client.revoke(version.cert_pem, 4)
    (leaf, code), _kwargs = client._client.revoke.call_args
    assert leaf == x509.load_pem_x509_certificate(version.cert_pem.encode()) and code == 4

    client._client.revoke.side_effect = messages.Error.with_code("alreadyRevoked", detail="Certificate already revoked")
    with pytest.raises(AcmeError) as raised:
        client.revoke(version.cert_pem, 0)
    assert raised.value.problem_type == "alreadyRevoked" and not raised.value.transient
