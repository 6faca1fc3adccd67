"""ARI (RFC 9773): the adapter against a scripted CA on the HTTP seam, and renewal planning
against a fake CA at the adapter seam (certs.accounts.client_for)."""

import base64
import datetime
import json

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from certs import accounts, orders, tasks
from certs.acme import AcmeClient, AcmeError, OrderState, generate_account_key, generate_private_key, make_csr
from certs.acme.ari import NewOrder, ari_cert_id
from certs.models import AcmeAccount, Certificate, CertificateVersion, Order
from certs.renewal import policy

UTC = datetime.UTC
RFC_9773_AKI = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")  # its section 4.1 example


def make_leaf(serial=0x87654321, aki=RFC_9773_AKI, days=90, not_before=None, names=("a.example.com",)):
    key = ec.generate_private_key(ec.SECP256R1())
    not_before = not_before or datetime.datetime.now(UTC) - datetime.timedelta(hours=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")]))
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(not_before).not_valid_after(not_before + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    )
    if aki is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(key_identifier=aki, authority_cert_issuer=None,
                                        authority_cert_serial_number=None), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM).decode()


# --- the ARI certificate identifier


def test_the_ari_id_is_rfc_9773s_example():
    # RFC 9773 section 4.1: keyIdentifier 69:88:5B:...:D4 and serial 00:87:65:43:21.
    assert ari_cert_id(make_leaf()) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert ari_cert_id(make_leaf().encode()) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_a_certificate_without_an_authority_key_identifier_has_no_ari_id():
    with pytest.raises(ValueError, match="Authority Key Identifier"):
        ari_cert_id(make_leaf(aki=None))


def test_new_order_carries_replaces_only_when_given():
    from acme import messages

    identifier = messages.Identifier(typ=messages.IDENTIFIER_FQDN, value="a.example.com")
    assert json.loads(NewOrder(identifiers=[identifier], replaces="x.y").json_dumps()) == {
        "identifiers": [{"type": "dns", "value": "a.example.com"}], "replaces": "x.y"}
    assert json.loads(NewOrder(identifiers=[identifier]).json_dumps()) == {
        "identifiers": [{"type": "dns", "value": "a.example.com"}]}


# --- the adapter, against a scripted CA behind requests' transport


class ScriptedCA(requests.adapters.BaseAdapter):
    """A CA at https://ca.test: directory, nonces, newOrder (records payloads), renewalInfo."""

    def __init__(self, ari=True):
        super().__init__()
        self.ari = ari
        self.windows = {}  # ARI id -> (status, body, headers)
        self.orders = []  # newOrder payloads
        self.refuse_replaces = None  # problem type to refuse a `replaces` with
        self.nonce = 0

    def _response(self, request, status, body=None, headers=None, content_type="application/json"):
        response = requests.Response()
        response.status_code = status
        response.url = request.url
        response.request = request
        self.nonce += 1
        response.headers = requests.structures.CaseInsensitiveDict(
            {"Content-Type": content_type, "Replay-Nonce": base64.urlsafe_b64encode(
                b"nonce-%d" % self.nonce).decode().rstrip("="), **(headers or {})})
        response._content = json.dumps(body).encode() if body is not None else b""
        return response

    def send(self, request, **kwargs):
        path = request.url.removeprefix("https://ca.test")
        if path == "/dir":
            directory = {"newNonce": "https://ca.test/nonce", "newAccount": "https://ca.test/acct",
                         "newOrder": "https://ca.test/new-order", "revokeCert": "https://ca.test/revoke"}
            if self.ari:
                directory["renewalInfo"] = "https://ca.test/renewal-info/"
            return self._response(request, 200, directory)
        if path == "/nonce":
            return self._response(request, 200)
        if path == "/new-order":
            jws = json.loads(request.body)
            payload = json.loads(base64.urlsafe_b64decode(jws["payload"] + "=" * (-len(jws["payload"]) % 4)))
            self.orders.append(payload)
            if "replaces" in payload and self.refuse_replaces:
                return self._response(request, 409, {"type": f"urn:ietf:params:acme:error:{self.refuse_replaces}",
                                                     "detail": "already replaced"},
                                      content_type="application/problem+json")
            order = {"status": "pending", "identifiers": payload["identifiers"], "finalize": "https://ca.test/fin/1",
                     "authorizations": ["https://ca.test/authz/1"]}
            if "replaces" in payload:
                order["replaces"] = payload["replaces"]
            return self._response(request, 201, order, {"Location": f"https://ca.test/order/{len(self.orders)}"})
        if path.startswith("/renewal-info/"):
            status, body, headers = self.windows.get(path.rsplit("/", 1)[1], (404, None, {}))
            if status >= 400:
                return self._response(request, status, {"type": "urn:ietf:params:acme:error:malformed",
                                                        "detail": "no such certificate"},
                                      content_type="application/problem+json")
            return self._response(request, status, body, headers)
        return self._response(request, 404, {"type": "urn:ietf:params:acme:error:malformed", "detail": path},
                              content_type="application/problem+json")

    def close(self):
        pass


def client_with(ca):
    client = AcmeClient("https://ca.test/dir", generate_account_key(), account_url="https://ca.test/acct/1")
    client._net.session.mount("https://ca.test", ca)
    return client


def test_renewal_info_is_none_without_renewal_info_in_the_directory():
    client = client_with(ScriptedCA(ari=False))
    assert client.supports_ari() is False
    assert client.renewal_info(make_leaf()) is None


def test_renewal_info_returns_the_window_and_retry_after():
    ca = ScriptedCA()
    cert = make_leaf()
    ca.windows[ari_cert_id(cert)] = (200, {"suggestedWindow": {"start": "2031-01-02T03:04:05Z",
                                                                "end": "2031-01-03T03:04:05Z"}},
                                     {"Retry-After": "21600"})
    client = client_with(ca)
    assert client.supports_ari() is True
    start, end, retry_after = client.renewal_info(cert)
    assert start == datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert end == datetime.datetime(2031, 1, 3, 3, 4, 5, tzinfo=UTC)
    assert 21590 < retry_after <= 21600


@pytest.mark.parametrize("body", [
    {"suggestedWindow": {"start": "2031-01-03T00:00:00Z", "end": "2031-01-02T00:00:00Z"}},  # ends before it starts
    {"suggestedWindow": {"start": "2031-01-03T00:00:00Z"}},
    {"nothing": 1},
])
def test_an_unusable_window_is_a_transient_error(body):
    ca = ScriptedCA()
    cert = make_leaf()
    ca.windows[ari_cert_id(cert)] = (200, body, {})
    with pytest.raises(AcmeError) as error:
        client_with(ca).renewal_info(cert)
    assert error.value.transient


def test_an_unknown_certificate_is_the_cas_error_in_its_words():
    with pytest.raises(AcmeError, match="no such certificate"):
        client_with(ScriptedCA()).renewal_info(make_leaf())


def csr():
    return make_csr(generate_private_key("ec256"), ["a.example.com"])


def test_new_order_sends_replaces_when_the_ca_offers_ari():
    ca = ScriptedCA()
    state = client_with(ca).new_order(csr(), replaces="aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
    assert ca.orders[-1]["replaces"] == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert state.replaces == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert state.url == "https://ca.test/order/1"


def test_new_order_without_replaces_or_without_ari_sends_none():
    ca = ScriptedCA()
    assert client_with(ca).new_order(csr()).replaces == ""
    assert "replaces" not in ca.orders[-1]
    ca = ScriptedCA(ari=False)
    assert client_with(ca).new_order(csr(), replaces="a.b").replaces == ""
    assert "replaces" not in ca.orders[-1]


@pytest.mark.parametrize("problem", ["alreadyReplaced", "malformed"])
def test_a_refused_replaces_orders_again_without_it(problem):
    ca = ScriptedCA()
    ca.refuse_replaces = problem
    state = client_with(ca).new_order(csr(), replaces="a.b")
    assert [o.get("replaces") for o in ca.orders] == ["a.b", None]
    assert state.replaces == "" and state.status == "pending"


# --- renewal planning, against a fake CA at the adapter seam


class FakeCA:
    def __init__(self):
        self.window = None  # (start, end, retry_after) or None: no ARI
        self.error = None
        self.asked = []
        self.orders = []

    def supports_ari(self):
        return self.window is not None

    def renewal_info(self, cert_pem):
        self.asked.append(ari_cert_id(cert_pem))
        if self.error:
            raise self.error
        return self.window

    def new_order(self, csr_pem, replaces=None):
        sent = replaces if replaces and self.supports_ari() else ""
        self.orders.append(sent)
        return OrderState(url="https://ca.test/order/1", status="invalid", finalize_url="https://ca.test/fin/1",
                          certificate_url="", authorization_urls=[], error="stop here", replaces=sent)


@pytest.fixture
def ca(monkeypatch):
    fake = FakeCA()
    monkeypatch.setattr(accounts, "client_for", lambda account: fake)
    return fake


@pytest.fixture
def queued_ari(monkeypatch):
    queued = []
    monkeypatch.setattr(policy, "enqueue_ari_refresh", queued.append)
    return queued


@pytest.fixture
def cert(db):
    user = get_user_model().objects.create(username="u")
    account = AcmeAccount.objects.create(owner=user, directory_url="https://ca.test/dir", account_key="x",
                                         account_url="https://ca.test/acct/1")
    cert = Certificate.objects.create(owner=user, account=account, domains=["a.example.com"],
                                      status=Certificate.Status.VALID)
    pem = make_leaf(serial=0x1234, not_before=timezone.now() - datetime.timedelta(days=1))
    leaf = x509.load_pem_x509_certificate(pem.encode())
    version = CertificateVersion.objects.create(
        certificate=cert, cert_pem=pem, chain_pem=pem, private_key="-", serial="1234", issuer="CN=Test CA",
        not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc)
    cert.current_version = version
    cert.next_renewal_at = policy.planned_renewal(version)
    cert.save()
    return cert


def window_around(days_from_now, width_hours=48, retry_after=21600.0):
    start = timezone.now() + datetime.timedelta(days=days_from_now)
    return start, start + datetime.timedelta(hours=width_hours), retry_after


def test_apply_ari_plans_inside_the_window_and_rechecks_after_retry_after(ca, cert):
    ca.window = window_around(50)
    before = timezone.now()
    assert policy.apply_ari(cert, cert.current_version) is True
    start, end, _ = ca.window
    assert (cert.ari_window_start, cert.ari_window_end) == (start, end)
    assert start <= cert.next_renewal_at <= end
    assert before + datetime.timedelta(hours=6) <= cert.ari_check_after <= timezone.now() + datetime.timedelta(hours=6)
    assert ca.asked == [ari_cert_id(cert.current_version.cert_pem)]


def test_the_time_is_uniformly_random_in_the_window(ca, cert):
    ca.window = window_around(50, width_hours=100)
    start, end, _ = ca.window
    picks = []
    for _ in range(200):
        cert.ari_window_start = None  # a first answer: always pick afresh
        policy.apply_ari(cert, cert.current_version)
        picks.append((cert.next_renewal_at - start) / (end - start))
    assert all(0 <= p <= 1 for p in picks)
    assert min(picks) < 0.15 and max(picks) > 0.85 and 0.35 < sum(picks) / len(picks) < 0.65


def test_a_window_in_the_past_means_now(ca, cert):
    ca.window = window_around(-3)
    policy.apply_ari(cert, cert.current_version)
    assert abs(cert.next_renewal_at - timezone.now()) < datetime.timedelta(seconds=5)


def test_a_window_that_has_begun_plans_between_now_and_its_end(ca, cert):
    ca.window = window_around(-1, width_hours=48)
    policy.apply_ari(cert, cert.current_version)
    assert timezone.now() - datetime.timedelta(seconds=5) <= cert.next_renewal_at <= ca.window[1]


@pytest.mark.parametrize("retry_after, expected", [(5, 60), (None, 6 * 3600), (10 * 86400, 86400)])
def test_retry_after_is_clamped_to_a_minute_and_a_day(ca, cert, retry_after, expected):
    ca.window = window_around(50, retry_after=retry_after)
    now = timezone.now()
    policy.apply_ari(cert, cert.current_version)
    assert abs((cert.ari_check_after - now).total_seconds() - expected) < 5


def test_a_recheck_keeps_the_planned_time_inside_an_unchanged_window_and_moves_it_for_an_earlier_one(ca, cert):
    ca.window = window_around(50)
    policy.apply_ari(cert, cert.current_version)
    planned = cert.next_renewal_at
    policy.apply_ari(cert, cert.current_version)
    assert cert.next_renewal_at == planned
    ca.window = window_around(2, width_hours=24)  # the CA pulls renewal earlier (e.g. a mass revocation)
    policy.apply_ari(cert, cert.current_version)
    assert ca.window[0] <= cert.next_renewal_at <= ca.window[1]


def test_without_ari_the_plain_plan_stands(ca, cert):
    planned = cert.next_renewal_at
    cert.ari_window_start = cert.ari_window_end = timezone.now()
    assert policy.apply_ari(cert, cert.current_version) is False
    assert cert.next_renewal_at == planned
    assert (cert.ari_window_start, cert.ari_window_end, cert.ari_check_after) == (None, None, None)


@pytest.mark.parametrize("error, hours", [
    (AcmeError("cannot reach the CA", problem_type="connection", transient=True), 1),
    (AcmeError("malformed: no such certificate", problem_type="malformed"), 6),
    (AcmeError("busy", problem_type="rateLimited", transient=True, retry_after=7200), 2),
])
def test_a_failed_check_keeps_the_plan_and_asks_again_later(ca, cert, error, hours):
    ca.window, ca.error = window_around(50), error
    planned = cert.next_renewal_at
    now = timezone.now()
    assert policy.apply_ari(cert, cert.current_version) is False
    assert cert.next_renewal_at == planned
    assert abs(cert.ari_check_after - (now + datetime.timedelta(hours=hours))) < datetime.timedelta(seconds=5)


def test_an_expired_certificate_is_not_checked(ca, cert):
    version = cert.current_version
    version.not_after = timezone.now() - datetime.timedelta(minutes=1)
    ca.window = window_around(-10)
    assert policy.apply_ari(cert, version) is False
    assert ca.asked == [] and cert.ari_check_after is None


def test_after_a_failed_renewal_the_back_off_stands(ca, cert):
    cert.renewal_failures, cert.next_renewal_at = 2, timezone.now() + datetime.timedelta(hours=2)
    planned = cert.next_renewal_at
    ca.window = window_around(50)
    policy.apply_ari(cert, cert.current_version)
    assert cert.next_renewal_at == planned and cert.ari_window_start == ca.window[0]


def test_issuing_queues_the_ari_check_after_commit_not_inside_the_transaction(ca, cert, queued_ari,
                                                                              django_capture_on_commit_callbacks):
    cert.ari_window_start = cert.ari_window_end = timezone.now()
    Certificate.objects.filter(pk=cert.pk).update(ari_window_start=cert.ari_window_start,
                                                 ari_window_end=cert.ari_window_end)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        policy.issued(cert, cert.current_version)
        assert queued_ari == [] and ca.asked == []  # nothing inside the transaction
    assert callbacks and queued_ari == [cert.pk] and ca.asked == []
    stored = Certificate.objects.get(pk=cert.pk)
    assert stored.ari_window_start is None and stored.ari_window_end is None  # the old version's window is gone
    assert stored.ari_check_after <= timezone.now()  # the beat asks if the queued task is lost


def test_the_ari_refresh_task_stores_the_plan(ca, cert):
    ca.window = window_around(50)
    tasks.ari_refresh(cert.pk)
    stored = Certificate.objects.get(pk=cert.pk)
    assert (stored.ari_window_start, stored.ari_window_end) == ca.window[:2]
    assert ca.window[0] <= stored.next_renewal_at <= ca.window[1]
    assert stored.ari_check_after > timezone.now() + datetime.timedelta(hours=5)


def test_a_refresh_that_raced_a_newer_plan_is_dropped(ca, cert, monkeypatch):
    ca.window = window_around(50)
    real = policy.apply_ari
    backoff = timezone.now() + datetime.timedelta(hours=1)

    def meanwhile_a_renewal_failed(c, version, acme=None):
        Certificate.objects.filter(pk=c.pk).update(next_renewal_at=backoff, renewal_failures=1)
        return real(c, version, acme)

    monkeypatch.setattr(policy, "apply_ari", meanwhile_a_renewal_failed)
    assert policy.refresh_ari(cert.pk) is False
    stored = Certificate.objects.get(pk=cert.pk)
    assert stored.next_renewal_at == backoff and stored.ari_window_start is None


def test_the_beat_rechecks_only_what_is_due_and_leases_it(cert, queued_ari):
    now = timezone.now()
    Certificate.objects.filter(pk=cert.pk).update(ari_check_after=now - datetime.timedelta(minutes=1))
    later = Certificate.objects.create(owner=cert.owner, account=cert.account, domains=["b.example.com"],
                                       current_version=cert.current_version,
                                       ari_check_after=now + datetime.timedelta(hours=1))
    Certificate.objects.create(owner=cert.owner, account=cert.account, domains=["c.example.com"])  # never checked
    assert policy.recheck_ari() == [cert.pk]
    assert queued_ari == [cert.pk]
    assert policy.recheck_ari() == []  # leased: not queued again while it waits
    assert Certificate.objects.get(pk=later.pk).ari_check_after == now + datetime.timedelta(hours=1)


def test_the_beat_schedule_runs_the_recheck():
    assert any(entry["task"] == "certs.tasks.ari_recheck" for entry in settings.CELERY_BEAT_SCHEDULE.values())


# --- a renewal order carries `replaces`


def new_order_for(cert, is_renewal):
    order = Order.objects.create(owner=cert.owner, certificate=cert, is_renewal=is_renewal)
    with pytest.raises(orders.OrderFailed):  # the fake CA stops every order right after creation
        orders.step_new(order, accounts.client_for(cert.account))
    order.refresh_from_db()
    return order


def test_a_renewal_order_replaces_the_current_version_when_the_ca_offers_ari(ca, cert):
    ca.window = window_around(50)
    order = new_order_for(cert, is_renewal=True)
    assert order.replaces == ari_cert_id(cert.current_version.cert_pem) == ca.orders[-1]


def test_a_first_order_replaces_nothing(ca, cert):
    ca.window = window_around(50)
    cert.current_version = None
    cert.save()
    assert new_order_for(cert, is_renewal=False).replaces == "" and ca.orders == [""]


def test_without_ari_a_renewal_order_replaces_nothing(ca, cert):
    assert new_order_for(cert, is_renewal=True).replaces == "" and ca.orders == [""]
