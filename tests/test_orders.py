"""The order state machine against a fake CA at one seam (certs.accounts.client_for)."""

import datetime
import re
import threading
import time
import uuid

import pytest
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from certs import orders
from certs.acme import AcmeError, AuthorizationState, ChallengeState, OrderState
from certs.acme.client import _Network
from certs.models import AcmeAccount, Certificate, CertificateVersion, Order
from panel.models import Site, SiteDomain


class FakeCA:
    """Just enough of AcmeClient: counts calls, lets a test script the CA's answers."""

    def __init__(self):
        self.orders_created = 0
        self.authz_status = "valid"
        self.order_status = "ready"
        self.fail_next = None
        self.csr = None
        self.wrong_key = False
        self.retry_after = None

    def _maybe_fail(self):
        if self.fail_next:
            error, self.fail_next = self.fail_next, None
            raise error

    def new_order(self, csr_pem):
        self._maybe_fail()
        self.orders_created += 1
        self.csr = x509.load_pem_x509_csr(csr_pem)
        return self.fetch_order("https://ca.test/order/1")

    def fetch_order(self, url):
        self._maybe_fail()
        return OrderState(url=url, status=self.order_status, finalize_url="https://ca.test/finalize/1",
                          certificate_url="https://ca.test/cert/1",
                          authorization_urls=["https://ca.test/authz/a"], retry_after=self.retry_after)

    def fetch_authorization(self, url):
        self._maybe_fail()
        return AuthorizationState(url=url, identifier="a.example.com", wildcard=False, status=self.authz_status,
                                  expires=None, challenges=[ChallengeState("http-01", "https://ca.test/ch/1",
                                                                           "tok-1", "pending")]), self.retry_after

    def key_authorization(self, token):
        return token + ".thumb"

    def answer_challenge(self, url, challenge_type):
        self._maybe_fail()
        self.authz_status = "valid"

    def finalize(self, finalize_url, csr_pem, order_url):
        self.order_status = "valid"
        return self.fetch_order(order_url)

    def download_certificate(self, url):
        key = ec.generate_private_key(ec.SECP256R1()) if self.wrong_key else None
        public_key = key.public_key() if key else self.csr.public_key()
        signer = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names = self.csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake CA")]))
            .public_key(public_key).serial_number(4242)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(names, critical=False)
            .sign(signer, hashes.SHA256())
        )
        return cert.public_bytes(Encoding.PEM).decode()


@pytest.fixture
def ca(monkeypatch, settings, tmp_path):
    settings.ACME_CHALLENGE_DIR = tmp_path
    settings.ACME_INLINE_POLL_SECONDS = 0.05
    fake = FakeCA()
    monkeypatch.setattr(orders.accounts, "client_for", lambda account: fake)
    monkeypatch.setattr(orders, "enqueue", lambda *args: None)
    return fake


@pytest.fixture
def order(db):
    user = get_user_model().objects.create(username="u")
    account = AcmeAccount.objects.create(owner=user, directory_url="https://ca.test/dir", account_key="x",
                                         account_url="https://ca.test/acct/1")
    cert = Certificate.objects.create(owner=user, account=account, domains=["a.example.com"])
    site = Site.objects.create(owner=user, domains=["a.example.com"])
    SiteDomain.objects.create(site=site, name="a.example.com")  # HTTP-01 is answered on the user's own site
    return Order.objects.create(owner=user, certificate=cert)


def run_to_end(order, max_steps=20):
    for _ in range(max_steps):
        order = Order.objects.get(pk=order.pk)
        if order.finished:
            return order
        orders.run_step(order)
    raise AssertionError(f"order stuck in {order.status}")


def test_an_order_runs_to_valid_and_stores_one_version(ca, order):
    ca.authz_status = "pending"
    order = run_to_end(order)
    assert order.status == Order.Status.VALID
    cert = order.certificate
    cert.refresh_from_db()
    assert cert.status == Certificate.Status.VALID
    assert cert.current_version.serial == format(4242, "x")
    assert cert.next_renewal_at is not None
    assert CertificateVersion.objects.count() == 1
    assert [e.message for e in order.log_entries.all()][-1].startswith("Certificate issued")


def test_a_repeated_first_step_resumes_the_same_ca_order(ca, order):
    orders.run_step(Order.objects.get(pk=order.pk))
    again = Order.objects.get(pk=order.pk)
    again.status = Order.Status.NEW  # as if the task ran again before its result was recorded
    orders.run_step(again)
    assert ca.orders_created == 1
    assert again.authorizations.count() == 1


def test_a_repeated_final_step_stores_no_second_version(ca, order):
    order = run_to_end(order)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.FINALIZING)
    orders.run_step(Order.objects.get(pk=order.pk))
    assert CertificateVersion.objects.count() == 1


def test_a_certificate_for_another_key_is_refused(ca, order):
    ca.wrong_key = True
    order = run_to_end(order)
    assert order.status == Order.Status.INVALID
    assert "different key" in order.error
    assert CertificateVersion.objects.count() == 0
    assert Certificate.objects.get().status == Certificate.Status.FAILED


def test_a_permanent_problem_is_recorded_in_the_cas_words(ca, order):
    ca.fail_next = AcmeError("rejectedIdentifier: Error creating new order :: Cannot issue for \"a.example.com\"",
                             problem_type="rejectedIdentifier")
    order = run_to_end(order)
    assert order.status == Order.Status.INVALID
    assert "Cannot issue for" in Certificate.objects.get().last_error


def test_a_transient_problem_is_retried_no_sooner_than_retry_after(ca, order):
    ca.fail_next = AcmeError("rateLimited: slow down", problem_type="rateLimited", transient=True, retry_after=120)
    delay = orders.run_step(Order.objects.get(pk=order.pk))
    assert delay >= 120
    order.refresh_from_db()
    assert order.status == Order.Status.NEW and order.step_attempts == 1
    assert run_to_end(order).status == Order.Status.VALID


def test_pending_validation_frees_the_worker_and_honours_retry_after(ca, order):
    ca.retry_after = 7
    for _ in range(2):
        orders.run_step(Order.objects.get(pk=order.pk))  # new, authorizing
    ca.authz_status = "pending"
    Order.objects.filter(pk=order.pk).update(status=Order.Status.VALIDATING)
    Order.objects.get(pk=order.pk).authorizations.update(status="pending")
    delay = orders.run_step(Order.objects.get(pk=order.pk))
    assert delay >= 7
    assert Order.objects.get(pk=order.pk).status == Order.Status.VALIDATING


def test_only_the_current_wakeup_may_run_a_step(ca, order):
    assert orders.claim(order.pk, uuid.uuid4()) == orders.Claim.STALE
    claimed = orders.claim(order.pk, order.wakeup)
    assert isinstance(claimed, Order)
    assert orders.claim(order.pk, order.wakeup) == orders.Claim.BUSY
    orders.run_step(claimed)  # records progress with a new wakeup and releases the claim
    assert orders.claim(order.pk, order.wakeup) == orders.Claim.STALE
    assert isinstance(orders.claim(order.pk, Order.objects.get(pk=order.pk).wakeup), Order)


def test_challenge_files_are_removed_when_the_order_ends(ca, order, settings):
    ca.authz_status = "pending"
    orders.run_step(Order.objects.get(pk=order.pk))
    orders.run_step(Order.objects.get(pk=order.pk))
    # In the folder nginx serves for that name only, not the one every vhost shared.
    token = settings.ACME_CHALLENGE_DIR / "names" / "a.example.com" / "tok-1"
    assert token.read_text() == "tok-1.thumb" and not (settings.ACME_CHALLENGE_DIR / "tok-1").exists()
    run_to_end(order)
    assert not token.exists()


def test_bad_nonce_is_retried_more_than_once_with_fresh_nonces():
    net = _Network(key=None)
    attempts = []

    def post_once(*args, **kwargs):
        attempts.append(1)
        if len(attempts) < 4:
            raise messages.Error.with_code("badNonce", detail="JWS has an invalid anti-replay nonce")
        return "ok"

    net._post_once = post_once
    assert net.post("https://ca.test/x", None) == "ok"
    assert len(attempts) == 4


def test_bad_nonce_gives_up_eventually():
    net = _Network(key=None)

    def post_once(*args, **kwargs):
        raise messages.Error.with_code("badNonce")

    net._post_once = post_once
    with pytest.raises(messages.Error):
        net.post("https://ca.test/x", None)


def _problem_response(status, problem_type, retry_after=None):
    import json

    import requests

    response = requests.Response()
    response.status_code = status
    response.headers["Content-Type"] = "application/problem+json"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    response._content = json.dumps({"type": f"urn:ietf:params:acme:error:{problem_type}",
                                    "detail": "too many new orders recently"}).encode()
    return response


def test_a_rate_limit_carries_the_cas_retry_after():
    from certs.acme.client import _translate

    net = _Network(key=None)
    with pytest.raises(messages.Error) as raised:
        net._check_response(_problem_response(429, "rateLimited", retry_after=3600))
    error = _translate(raised.value)
    assert error.transient and error.problem_type == "rateLimited"
    assert 3590 <= error.retry_after <= 3600
    assert "too many new orders" in str(error)


def test_a_server_error_is_transient_and_an_unauthorized_is_not():
    from certs.acme.client import _translate

    net = _Network(key=None)
    for status, problem, transient in ((503, "serverInternal", True), (403, "unauthorized", False)):
        with pytest.raises(messages.Error) as raised:
            net._check_response(_problem_response(status, problem))
        assert _translate(raised.value).transient is transient


def test_a_step_whose_claim_was_taken_over_records_nothing(ca, order):
    claimed = orders.claim(order.pk, order.wakeup)
    Order.objects.filter(pk=order.pk).update(wakeup=uuid.uuid4())  # e.g. the stalled-order sweep took over
    assert orders.run_step(claimed) is None
    assert Order.objects.get(pk=order.pk).status == Order.Status.NEW


def test_the_sweep_requeues_only_orders_past_their_next_step(ca, order, monkeypatch):
    from django.utils import timezone

    queued = []
    monkeypatch.setattr(orders, "enqueue", lambda order_id, wakeup, delay: queued.append(order_id))
    later = timezone.now() + datetime.timedelta(hours=1)  # waiting out a CA's Retry-After
    Order.objects.filter(pk=order.pk).update(next_step_at=later)
    assert orders.resume_stalled() == 0
    Order.objects.filter(pk=order.pk).update(next_step_at=timezone.now() - datetime.timedelta(minutes=5))
    old_wakeup = Order.objects.get(pk=order.pk).wakeup
    assert orders.resume_stalled() == 1 and queued == [order.pk]
    assert Order.objects.get(pk=order.pk).wakeup != old_wakeup  # older deliveries are now stale


def test_the_api_never_shows_a_failure_half_committed(ca, transactional_db, monkeypatch):
    """The worker commits an order's failure and the certificate's error together; a GET that
    reads the certificate, then (meanwhile) the failure is committed, then the order, must show
    either both or neither."""
    user = get_user_model().objects.create(username="u")
    account = AcmeAccount.objects.create(owner=user, directory_url="https://ca.test/dir", account_key="x",
                                         account_url="https://ca.test/acct/1")
    cert = Certificate.objects.create(owner=user, account=account, domains=["a.example.com"])
    order = Order.objects.create(owner=user, certificate=cert)
    ca.fail_next = AcmeError("rejectedIdentifier: Cannot issue for \"a.example.com\"",
                             problem_type="rejectedIdentifier")

    def worker_fails():
        # SQLite: the reader's transaction holds the write lock until it ends; a step that meets
        # the lock either raises or (inside the step) is recorded as a crash to retry: go again.
        for _ in range(200):
            try:
                orders.run_step(Order.objects.get(pk=order.pk))
                if Order.objects.get(pk=order.pk).status != Order.Status.NEW:
                    return
            except OperationalError:
                pass
            finally:
                connection.close()
            time.sleep(0.05)

    worker = threading.Thread(target=worker_fails)
    latest_order = Certificate.latest_order

    def read_after_the_worker_had_its_chance(self):  # between the certificate's read and the order's
        worker.start()
        worker.join(timeout=1)
        return latest_order(self)

    monkeypatch.setattr(Certificate, "latest_order", read_after_the_worker_had_its_chance)
    client = APIClient()
    client.force_authenticate(user)
    during = client.get(f"/api/v1/certificates/{cert.pk}/").json()
    monkeypatch.setattr(Certificate, "latest_order", latest_order)
    worker.join(timeout=15)
    after = client.get(f"/api/v1/certificates/{cert.pk}/").json()

    assert (during["order"]["status"], during["last_error"]) == ("new", "")
    assert after["order"]["status"] == "invalid" and "Cannot issue for" in after["last_error"]


def test_an_order_gets_no_answer_served_for_another_users_site(ca, order, settings):
    """B's order for a name on A's site (B had it once; the name moved): nothing is written
    anywhere nginx serves it, and the order fails saying why."""
    alice = get_user_model().objects.create(username="alice")
    Site.objects.filter(owner=order.owner).update(owner=alice)
    ca.authz_status = "pending"

    order = run_to_end(order)

    assert order.status == Order.Status.INVALID
    assert "a.example.com is on another user's site, so its HTTP-01 challenge is not answered for you" in order.error
    assert not list(settings.ACME_CHALLENGE_DIR.rglob("tok-1"))


def test_the_token_goes_only_where_the_names_site_is_the_order_owners(db, settings, tmp_path):
    from certs.challenges import http01
    from panel.deployment.nginx import render

    settings.ACME_CHALLENGE_DIR = tmp_path
    alice, bob = (get_user_model().objects.create(username=name) for name in ("alice", "bob"))
    admin = get_user_model().objects.create(username="root", is_superuser=True)
    site = Site.objects.create(owner=alice, domains=["a.example.com"])
    SiteDomain.objects.create(site=site, name="a.example.com")

    assert http01.present("tok-a", "tok-a.thumb", alice, "a.example.com") == "names/a.example.com"
    assert (tmp_path / "names" / "a.example.com" / "tok-a").read_text() == "tok-a.thumb"
    with pytest.raises(http01.NotYours, match="is on another user's site"):
        http01.present("tok-b", "tok-b.thumb", bob, "a.example.com")
    with pytest.raises(http01.NotYours, match="is on none of your sites"):
        http01.present("tok-b", "tok-b.thumb", bob, "nosite.example.com")
    assert not list(tmp_path.rglob("tok-b"))
    # An administrator's order: the name's folder, or the default server's directory for a name on no site.
    assert http01.present("tok-c", "tok-c.thumb", admin, "a.example.com") == "names/a.example.com"
    assert http01.present("tok-d", "tok-d.thumb", admin, "nosite.example.com") == ""
    assert (tmp_path / "tok-d").exists()
    http01.cleanup("tok-a", "names/a.example.com")
    assert not (tmp_path / "names" / "a.example.com" / "tok-a").exists()
    with pytest.raises(ValueError):
        http01.cleanup("tok-a", "names/../../etc")
    # The site's vhost serves the folder of the name asked for, never the directory itself.
    layout = render.Layout(vhost_dir=tmp_path / "vhosts", challenge_dir=tmp_path, http_port=80, https_port=443)
    config = render.render_site(site, layout)
    assert f"alias {tmp_path}/names/$host/;" in config and f"alias {tmp_path}/;" not in config


class WildcardCA(FakeCA):
    """A CA's answer for wild.example.test + *.wild.example.test: two authorizations with the same
    identifier, the wildcard's flagged `wildcard` (RFC 8555 7.1.4), each with a dns-01 challenge."""

    URLS = ["https://ca.test/authz/apex", "https://ca.test/authz/wildcard"]

    def fetch_order(self, url):
        return OrderState(url=url, status=self.order_status,
                          finalize_url="https://ca.test/finalize/1",
                          certificate_url="https://ca.test/cert/1", authorization_urls=self.URLS)

    def fetch_authorization(self, url):
        wildcard = url.endswith("wildcard")
        challenge = ChallengeState("dns-01", url.replace("authz", "ch"), f"tok-{int(wildcard)}",
                                   "pending")
        state = AuthorizationState(url=url, identifier="wild.example.test", wildcard=wildcard,
                                   status=self.authz_status, expires=None, challenges=[challenge])
        return state, None

    def dns01_value(self, token):
        return f"value-of-{token}"


def test_the_log_names_the_wildcard_of_a_wildcards_authorization(ca, monkeypatch, db):
    wild = WildcardCA()
    wild.authz_status = "pending"
    monkeypatch.setattr(orders.accounts, "client_for", lambda account: wild)
    user = get_user_model().objects.create(username="w")
    account = AcmeAccount.objects.create(owner=user, directory_url="https://ca.test/dir",
                                         account_key="x", account_url="https://ca.test/acct/1")
    cert = Certificate.objects.create(owner=user, account=account, challenge="dns-01-manual",
                                      domains=["wild.example.test", "*.wild.example.test"])
    order = Order.objects.create(owner=user, certificate=cert)
    for _ in range(2):  # ordered, then the TXT records to add by hand
        orders.run_step(Order.objects.get(pk=order.pk))
    assert Order.objects.get(pk=order.pk).status == Order.Status.AWAITING_USER
    Order.objects.filter(pk=order.pk).update(user_continued=True)
    order = run_to_end(order)
    assert order.status == Order.Status.VALID
    lines = [entry.text for entry in order.log_entries.all()]
    assert "wild.example.test: validated" in lines and "*.wild.example.test: validated" in lines


def test_renew_now_is_a_renewal_and_try_again_is_not(ca, order):
    """The page's "Renew now" and the API's renew start a renewal (the dashboard says so); before
    any version, the same button ("Try again") is an issuance again."""
    from django.test import Client

    from tests.test_ui import finish

    client, api = Client(), APIClient()
    client.force_login(order.owner)
    api.force_authenticate(order.owner)
    certificate = order.certificate
    Order.objects.filter(pk=order.pk).update(status=Order.Status.INVALID)
    client.post(reverse("ui:certificate-renew", args=[certificate.pk]))
    retry = certificate.latest_order()
    assert retry.pk != order.pk and not retry.is_renewal

    finish(retry)
    client.post(reverse("ui:certificate-renew", args=[certificate.pk]))
    renewal = certificate.latest_order()
    assert renewal.is_renewal and "Renewal requested" in renewal.log_entries.first().text
    dashboard = client.get(reverse("ui:dashboard")).content.decode()
    activity = re.search(r'<ul class="plain activity">.*?</ul>', dashboard, re.S).group(0)
    assert activity.count("Renewal") == 1 and activity.count("Issuance") == 2

    Order.objects.filter(pk=renewal.pk).update(status=Order.Status.VALID)
    assert api.post(f"/api/v1/certificates/{certificate.pk}/renew/").status_code == 202
    assert certificate.latest_order().is_renewal


def test_a_certificate_covering_an_earlier_one_of_its_site_ends_its_renewals(ca, order):
    """A wildcard ticked after a first certificate (or a new key type): nginx serves one
    certificate per site, so the earlier one would renew and alert for nothing."""
    site = Site.objects.get(owner=order.owner)
    first = order.certificate
    Certificate.objects.filter(pk=first.pk).update(site=site)
    run_to_end(order)
    elsewhere = Certificate.objects.create(owner=order.owner, account=first.account, site=site,
                                           domains=["b.example.com"], next_renewal_at=timezone.now())
    second = Certificate.objects.create(owner=order.owner, account=first.account, site=site,
                                        domains=["a.example.com"])
    later = run_to_end(Order.objects.create(owner=order.owner, certificate=second))

    assert later.status == Order.Status.VALID
    first.refresh_from_db()
    assert first.renewal_stopped and first.next_renewal_at is None
    assert first.current_version is not None  # valid until it expires, as it was
    elsewhere.refresh_from_db()
    assert not elsewhere.renewal_stopped and elsewhere.next_renewal_at is not None  # not covered
    assert "no longer renewed" in [entry.text for entry in later.log_entries.all()][-1]
