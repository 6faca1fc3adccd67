"""Uploading a certificate issued elsewhere: the checks, storing it, and its site serving it.

Certificates are real X.509 made here: a root, an intermediate under it and a leaf under
that, so "the key matches", "the chain is in order" and "nginx presents it" mean something.
Nothing reaches Celery (tests/conftest.py `queued`).
"""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.urls import reverse
from rest_framework.test import APIClient

from certs import orders, versions
from certs.models import Certificate, CertificateVersion
from certs.renewal import sweep
from panel.hosting import sites
from panel.models import Site
from tests.test_nginx_apply import nginx  # noqa: F401 - the private nginx fixture

NAMES = ["a.example.com", "www.a.example.com"]
UPLOAD_URL = reverse("ui:certificate-upload")
API_URL = "/api/v1/certificates/upload/"


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key, encryption=None):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption or serialization.NoEncryption()).decode()


def _sign(subject, public_key, issuer, issuer_key, ca, not_before, not_after, names=None):
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Pki:
    """A root, an intermediate and leaves for any names and dates."""

    def __init__(self):
        self.now = datetime.datetime.now(datetime.timezone.utc)
        year = datetime.timedelta(days=365)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _sign("Upload Test Root", self.root_key.public_key(), "Upload Test Root", self.root_key, True,
                          self.now - year, self.now + 5 * year)
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = _sign("Upload Test Intermediate", self.intermediate_key.public_key(), "Upload Test Root",
                                  self.root_key, True, self.now - year, self.now + 2 * year)

    def leaf(self, names=NAMES, key=None, starts_in_days=-10, ends_in_days=80):
        """(leaf PEM, its key PEM)."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        leaf = _sign(names[0] if names else "no-san.example.com", key.public_key(), "Upload Test Intermediate",
                     self.intermediate_key, False, self.now + datetime.timedelta(days=starts_in_days),
                     self.now + datetime.timedelta(days=ends_in_days), names)
        return _pem(leaf), _key_pem(key)

    @property
    def chain(self):
        return _pem(self.intermediate) + _pem(self.root)


@pytest.fixture(scope="module")
def pki():
    return Pki()


@pytest.fixture
def site(alice, settings, tmp_path):
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    return sites.save_site(Site(owner=alice, domains=list(NAMES), root=str(tmp_path / "www" / "a")))


@pytest.fixture
def good(pki):
    leaf, key = pki.leaf()
    return {"certificate": leaf, "chain": pki.chain, "private_key": key}


def api_client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def errors_of(response):
    return {field: [str(e) for e in errors] for field, errors in response.context["form"].errors.items()}


# --- a good upload


def test_a_good_upload_is_stored_and_its_site_serves_it(alice_client, alice, site, good, queued,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(UPLOAD_URL, {**good, "site": site.pk})
    assert response.status_code == 302
    assert response["Location"] == reverse("ui:site-detail", kwargs={"pk": site.pk}) + "#certificate"
    certificate = Certificate.objects.get()
    assert (certificate.owner, certificate.site, certificate.account) == (alice, site, None)
    assert certificate.source == Certificate.Source.UPLOADED and certificate.status == Certificate.Status.VALID
    assert certificate.domains == NAMES and certificate.key_type == "ec256"
    version = certificate.current_version
    assert version.cert_pem == good["certificate"]
    assert version.chain_pem == good["certificate"] + good["chain"]
    assert serialization.load_pem_private_key(version.private_key.encode(), None).public_key() == \
        serialization.load_pem_private_key(good["private_key"].encode(), None).public_key()
    assert site.serving_version() == version
    queued.apply_site.delay.assert_called_once_with(site.pk)


def test_the_key_is_encrypted_at_rest(alice, good):
    from django.db import connection

    from certs import upload

    upload.store_upload(alice, upload.check_upload(alice, good["certificate"], good["chain"], good["private_key"]))
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key FROM certs_certificateversion")
        (stored,) = cursor.fetchone()
    assert "PRIVATE KEY" not in stored


def test_a_full_chain_in_one_field_and_an_rsa_key_are_accepted_without_a_site(alice_client, pki):
    leaf, key = pki.leaf(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    response = alice_client.post(UPLOAD_URL, {"certificate": leaf + pki.chain, "private_key": key})
    certificate = Certificate.objects.get()
    assert response["Location"] == reverse("ui:certificate-detail", kwargs={"pk": certificate.pk})
    assert certificate.key_type == "rsa2048" and certificate.site is None
    assert certificate.current_version.chain_pem == leaf + pki.chain


def test_files_are_read_like_pasted_text(alice_client, good):
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = {f"{field}_file": SimpleUploadedFile(f"{field}.pem", text.encode()) for field, text in good.items()}
    response = alice_client.post(UPLOAD_URL, files)
    assert response.status_code == 302
    assert Certificate.objects.get().current_version.cert_pem == good["certificate"]


def test_the_site_is_preselected_and_a_foreign_one_is_404(alice_client, bob_client, site):
    page = alice_client.get(UPLOAD_URL, {"site": site.pk})
    assert page.context["form"]["site"].value() == site.pk
    assert bob_client.get(UPLOAD_URL, {"site": site.pk}).status_code == 404


def test_the_certificate_list_links_to_the_upload_page(alice_client):
    assert UPLOAD_URL in alice_client.get(reverse("ui:certificate-list")).content.decode()


# --- each check, with nothing stored


def _refused(client, data):
    response = client.post(UPLOAD_URL, data)
    assert response.status_code == 200
    assert not Certificate.objects.exists() and not CertificateVersion.objects.exists()
    return errors_of(response)


def test_a_key_of_another_certificate_is_refused(alice_client, pki, good):
    _other_leaf, other_key = pki.leaf()
    errors = _refused(alice_client, {**good, "private_key": other_key})
    assert errors == {"private_key": ["This private key does not belong to the certificate: their public keys "
                                      "differ."]}


def test_a_chain_out_of_order_is_refused(alice_client, pki, good):
    errors = _refused(alice_client, {**good, "chain": _pem(pki.root) + _pem(pki.intermediate)})
    assert list(errors) == ["chain"]
    assert "certificate 1 (CN=a.example.com) is not issued by the next one (CN=Upload Test Root)" in errors["chain"][0]


def test_a_chain_of_another_ca_is_refused(alice_client, good):
    errors = _refused(alice_client, {**good, "chain": Pki().chain})
    assert list(errors) == ["chain"]


def test_an_expired_certificate_is_refused(alice_client, pki):
    leaf, key = pki.leaf(starts_in_days=-100, ends_in_days=-1)
    errors = _refused(alice_client, {"certificate": leaf, "chain": pki.chain, "private_key": key})
    assert list(errors) == ["certificate"] and errors["certificate"][0].startswith("This certificate expired on ")


def test_a_certificate_not_valid_yet_is_refused(alice_client, pki):
    leaf, key = pki.leaf(starts_in_days=2, ends_in_days=90)
    errors = _refused(alice_client, {"certificate": leaf, "chain": pki.chain, "private_key": key})
    assert list(errors) == ["certificate"]
    assert errors["certificate"][0].startswith("This certificate is not valid yet: it starts on ")


def test_a_certificate_without_names_is_refused(alice_client, pki):
    leaf, key = pki.leaf(names=[])
    errors = _refused(alice_client, {"certificate": leaf, "chain": pki.chain, "private_key": key})
    assert list(errors) == ["certificate"] and "names no domain" in errors["certificate"][0]


def test_garbage_says_which_block_is_broken(alice_client, good):
    damaged = good["certificate"].replace("\n", "\nAAAA", 3)
    errors = _refused(alice_client, {**good, "chain": good["chain"] + damaged})
    assert errors == {"chain": ["Certificate 3 cannot be read: its PEM text is damaged or cut short."]}
    errors = _refused(alice_client, {**good, "certificate": "hello", "private_key": "-----BEGIN PRIVATE KEY-----"})
    assert set(errors) == {"certificate", "private_key"}
    assert errors["certificate"][0].startswith("No certificate found")


def test_a_password_protected_key_is_refused_with_how_to_remove_it(alice_client, good):
    key = serialization.load_pem_private_key(good["private_key"].encode(), None)
    encrypted = _key_pem(key, serialization.BestAvailableEncryption(b"secret"))
    errors = _refused(alice_client, {**good, "private_key": encrypted})
    assert list(errors) == ["private_key"] and "openssl pkey" in errors["private_key"][0]


def test_a_certificate_not_covering_the_site_says_which_name(alice_client, pki, site):
    leaf, key = pki.leaf(names=["a.example.com"])
    errors = _refused(alice_client, {"certificate": leaf, "chain": pki.chain, "private_key": key, "site": site.pk})
    assert errors == {"site": ["This certificate does not cover these names of the site: www.a.example.com."]}


def test_a_wildcard_covers_the_site(alice_client, pki, site):
    leaf, key = pki.leaf(names=["a.example.com", "*.a.example.com"])
    response = alice_client.post(UPLOAD_URL, {"certificate": leaf, "private_key": key, "site": site.pk})
    assert response.status_code == 302 and Certificate.objects.get().domains == ["a.example.com", "*.a.example.com"]


def test_every_problem_is_reported_at_once(alice_client, pki, site):
    leaf, _key = pki.leaf(names=["b.example.com"], starts_in_days=-100, ends_in_days=-1)
    _other, other_key = pki.leaf()
    errors = _refused(alice_client, {"certificate": leaf, "chain": _pem(pki.root), "private_key": other_key,
                                     "site": site.pk})
    assert set(errors) == {"certificate", "chain", "private_key", "site"}


# --- who may attach and see what; the key never leaves


def test_bob_cannot_attach_to_alices_site(bob_client, bob, site, good):
    response = bob_client.post(UPLOAD_URL, {**good, "site": site.pk})
    assert response.status_code == 200 and "site" in errors_of(response)
    assert api_client(bob).post(API_URL, {**good, "site": site.pk}, format="json").status_code == 400
    assert not Certificate.objects.exists()


def test_an_admin_cannot_attach_to_a_customers_site(site, good, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw-root-123")
    response = api_client(admin).post(API_URL, {**good, "site": site.pk}, format="json")
    assert response.status_code == 400 and "site" in response.json()
    assert not Certificate.objects.exists()


def test_bob_cannot_see_alices_upload(alice_client, bob_client, bob, good):
    alice_client.post(UPLOAD_URL, good)
    certificate = Certificate.objects.get()
    assert bob_client.get(reverse("ui:certificate-detail", kwargs={"pk": certificate.pk})).status_code == 404
    assert str(certificate.domains[0]) not in bob_client.get(reverse("ui:certificate-list")).content.decode()
    assert api_client(bob).get(f"/api/v1/certificates/{certificate.pk}/").status_code == 404


def _key_body(key_pem):
    return key_pem.splitlines()[1]  # a line of the key's base64, whatever PEM header it is shown under


def test_the_private_key_never_appears_in_a_response(alice, alice_client, site, good, pki):
    body = _key_body(good["private_key"])
    refused = alice_client.post(UPLOAD_URL, {**good, "chain": _pem(pki.root)})  # shown again with an error
    assert body not in refused.content.decode()
    response = api_client(alice).post(API_URL, {**good, "site": site.pk}, format="json")
    assert response.status_code == 201 and "private_key" not in response.json()
    assert body not in response.content.decode()
    certificate_id = response.json()["id"]
    assert response.json()["source"] == "uploaded" and response.json()["acme_account"] is None
    for url in (reverse("ui:certificate-detail", kwargs={"pk": certificate_id}),
                reverse("ui:site-detail", kwargs={"pk": site.pk}), reverse("ui:certificate-list")):
        assert body not in alice_client.get(url).content.decode()
    assert body not in api_client(alice).get(f"/api/v1/certificates/{certificate_id}/").content.decode()


def test_the_api_answers_400_with_field_errors(alice, good):
    response = api_client(alice).post(API_URL, {**good, "certificate": "nonsense"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["certificate"]
    assert not Certificate.objects.exists()


# --- an uploaded certificate is not renewed or revoked by the panel, but still alerts


@pytest.fixture
def uploaded(alice, alice_client, site, good):
    alice_client.post(UPLOAD_URL, {**good, "site": site.pk})
    return Certificate.objects.get()


def test_the_renewal_sweep_and_renew_now_leave_it_alone(alice, alice_client, uploaded, queued, settings):
    from panel.toolkit import clock

    settings.RENEWAL_MIN_AGE_SECONDS = 0
    Certificate.objects.filter(pk=uploaded.pk).update(next_renewal_at=clock.now())  # as if it were due
    assert sweep.sweep() == []
    page = alice_client.get(reverse("ui:site-detail", kwargs={"pk": uploaded.site_id})).content.decode()
    assert "Renew now" not in page and "cannot renew this certificate" in page
    response = alice_client.post(reverse("ui:certificate-renew", kwargs={"pk": uploaded.pk}), follow=True)
    assert "cannot renew it" in response.content.decode()
    assert api_client(alice).post(f"/api/v1/certificates/{uploaded.pk}/renew/").status_code == 409
    with pytest.raises(orders.NotOrderable):
        orders.start_order(uploaded)
    assert not uploaded.orders.exists()
    queued.enqueue.assert_not_called()


def test_revoking_it_is_refused(uploaded):
    version = uploaded.current_version
    assert not versions.describe(version, uploaded).can_revoke
    with pytest.raises(versions.RevocationRefused):
        versions.revoke(version)


def test_expiry_alerts_still_apply(uploaded, settings, monkeypatch):
    from django.core.cache.backends.locmem import LocMemCache

    from certs import notifications

    monkeypatch.setattr(notifications, "cache", LocMemCache("upload-expiry-alerts-test", {}))  # once a day per run
    sent = []
    monkeypatch.setattr(notifications, "notify", lambda owner_id, event, *message: sent.append((owner_id, event)))
    settings.EXPIRY_ALERT_DAYS = 90  # the uploaded leaf has 80 days left
    assert notifications.expiry_alerts() == [uploaded.pk]
    assert sent == [(uploaded.owner_id, "expiring")]


# --- end to end with a real (private) nginx


@pytest.mark.django_db
def test_nginx_presents_the_uploaded_certificate(nginx, tmp_path, pki, monkeypatch,
                                                  django_capture_on_commit_callbacks):
    from certs import upload
    from panel.deployment import dispatch, tasks
    from tests.support.tls import wait_for_served_certificate
    from tests.test_nginx_apply import make_site

    site = make_site(tmp_path, "served.example.com")
    monkeypatch.setattr(dispatch.APPLY_SITE, "delay", tasks.apply_site)  # the worker's job, done here and now
    leaf, key = pki.leaf(names=["served.example.com"])
    with django_capture_on_commit_callbacks(execute=True):
        upload.store_upload(site.owner, upload.check_upload(site.owner, leaf, pki.chain, key, site), site)
    expected = x509.load_pem_x509_certificate(leaf.encode()).serial_number
    served = wait_for_served_certificate(nginx.NGINX_HTTPS_PORT, "served.example.com",
                                         lambda cert: cert.serial_number == expected, timeout=10)
    assert served.serial_number == expected
