"""The audit log: every audited action leaves one entry naming who, what, which object,
from where and through what; no entry holds a secret; only staff read the log.

Nothing reaches Celery (tests/conftest.py `queued`); the CA is a fake at its seams.
"""

import datetime
import json
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from certs import orders
from certs.models import AcmeAccount, Certificate, DnsCredential, InstallTarget, NotificationChannel, Order
from panel.hosting import sites
from panel.models import Site
from panel.security import audit, tokens
from panel.security.audit import Action, AuditEntry, ObjectType, Via
from tests.test_ui import FakeCA
from tests.test_ui_dns import FORM_DATA as DNS_FORM
from tests.test_versions import ca, make_account, make_certificate, make_chain  # noqa: F401 (ca: a fixture)

pytestmark = pytest.mark.usefixtures("queued")

CLIENT_ADDRESS = "127.0.0.1"  # what Django's test client sends as REMOTE_ADDR
EAB_HMAC = "c2VjcmV0LWhtYWMta2V5LXZhbHVl"
CHANNEL_URL = "json://user:hook-secret-77@hooks.example.net:9/hook"  # a user may not target loopback


@pytest.fixture
def allowed_root(home_root, alice):
    """Alice's home: her document roots lie inside it."""
    return home_root / "alice"


@pytest.fixture
def site(alice, allowed_root):
    return sites.save_site(Site(owner=alice, domains=["a.example.com"], root=str(allowed_root / "a")))


@pytest.fixture
def alice_key(alice):
    return tokens.issue_token(alice, "deploy script")[1]


@pytest.fixture
def token_api(alice_key):
    return APIClient(HTTP_AUTHORIZATION=f"Token {alice_key}")


@pytest.fixture
def session_api(alice):
    client = APIClient()
    client.force_login(alice)
    return client


def entries(**lookup):
    return list(AuditEntry.objects.filter(**lookup).order_by("id"))


def only_entry(**lookup):
    found = entries(**lookup)
    assert len(found) == 1, found
    return found[0]


def assert_by(entry, user, via=Via.UI, address=CLIENT_ADDRESS):
    assert (entry.actor, entry.actor_label, entry.via, entry.address) == (user, user.username, via, address)


def all_entry_text():
    return json.dumps([[e.actor_label, e.object_label, e.details] for e in AuditEntry.objects.all()])


# --- logins


def test_a_login_is_recorded_with_the_user_and_address(alice):
    Client().post(reverse("login"), {"username": "alice", "password": "pw-alice-123"})
    entry = only_entry(action=Action.LOGIN)
    assert_by(entry, alice)
    assert (entry.object_type, entry.object_label) == (ObjectType.USER, "alice")


def test_a_failed_login_records_the_name_tried_and_never_the_password(alice):
    Client().post(reverse("login"), {"username": "alice", "password": "wrong-guess-942"})
    Client().post(reverse("login"), {"username": "nobody-here", "password": "wrong-guess-943"})
    first, second = entries(action=Action.LOGIN_FAILED)
    assert first.actor is None and first.address == CLIENT_ADDRESS
    assert (first.object_type, first.object_id, first.details) == (ObjectType.USER, str(alice.pk),
                                                                   {"username": "alice"})
    assert second.details == {"username": "nobody-here"} and second.object_id == ""
    assert "wrong-guess" not in all_entry_text()
    assert not entries(action=Action.LOGIN)


def test_a_logout_names_the_user_who_left(alice_client, alice):
    alice_client.post(reverse("logout"))
    assert_by(only_entry(action=Action.LOGOUT), alice)


# --- object changes, from the UI and the API


def test_a_site_added_in_the_ui_is_recorded(alice_client, alice, allowed_root):
    alice_client.post(reverse("ui:site-add"), {"domains": "b.example.com", "root": str(allowed_root / "b")})
    site = Site.objects.get()
    entry = only_entry(action=Action.CREATE)
    assert_by(entry, alice)
    assert (entry.object_type, entry.object_id, entry.object_label) == (ObjectType.SITE, str(site.pk),
                                                                        "b.example.com")


def test_site_create_change_and_delete_through_a_token_are_recorded_as_such(token_api, alice, allowed_root):
    created = token_api.post("/api/v1/sites/", {"domains": ["c.example.com"], "root": str(allowed_root / "c")},
                             format="json")
    site_id = str(created.json()["id"])
    token_api.patch(f"/api/v1/sites/{site_id}/", {"hsts": True}, format="json")
    token_api.delete(f"/api/v1/sites/{site_id}/")
    changes = entries(object_type=ObjectType.SITE)
    assert [(e.action, e.object_id) for e in changes] == [(Action.CREATE, site_id), (Action.CHANGE, site_id),
                                                          (Action.DELETE, site_id)]
    for entry in changes:
        assert_by(entry, alice, via=Via.API_TOKEN)


def test_every_write_through_a_token_is_recorded_and_reads_are_not(token_api, alice, site):
    token_api.get("/api/v1/sites/")
    response = token_api.post("/api/v1/sites/", {"domains": ["bad name"], "root": "/nowhere"}, format="json")
    assert response.status_code == 400
    token_api.delete(f"/api/v1/sites/{site.pk}/")
    writes = entries(action=Action.API_WRITE)
    assert [(e.details["method"], e.details["path"], e.details["status"]) for e in writes] == [
        ("POST", "/api/v1/sites/", 400), ("DELETE", f"/api/v1/sites/{site.pk}/", 204)]
    for entry in writes:
        assert_by(entry, alice, via=Via.API_TOKEN)


def test_a_session_write_to_the_api_is_not_a_token_write(session_api, alice, site):
    session_api.patch(f"/api/v1/sites/{site.pk}/", {"http2": False}, format="json")
    assert_by(only_entry(action=Action.CHANGE), alice, via=Via.UI)
    assert not entries(action=Action.API_WRITE)


def test_saves_by_the_worker_are_not_someones_action(site):
    Site.objects.get(pk=site.pk).save()  # e.g. nginx status, outside any request
    assert not entries(action=Action.CHANGE)


def test_a_requested_certificate_is_recorded(session_api, alice, site):
    account = make_account(alice)
    response = session_api.post("/api/v1/certificates/", {"domains": ["a.example.com"], "acme_account": account.pk,
                                                          "site": site.pk}, format="json")
    entry = only_entry(object_type=ObjectType.CERTIFICATE)
    assert (entry.action, entry.object_id, entry.object_label) == (Action.CREATE, str(response.json()["id"]),
                                                                   "a.example.com")
    assert_by(entry, alice)


def test_dns_credentials_added_and_deleted_in_the_ui_are_recorded_without_the_secret(alice_client, alice):
    alice_client.post(reverse("ui:dns-credential-add"), {**DNS_FORM, "name": "ns1"})
    credential = DnsCredential.objects.get()
    alice_client.post(reverse("ui:dns-credential-delete", args=[credential.pk]))
    changes = entries(object_type=ObjectType.DNS_CREDENTIAL)
    assert [(e.action, e.object_label) for e in changes] == [(Action.CREATE, "ns1"), (Action.DELETE, "ns1")]
    assert_by(changes[0], alice)
    assert DNS_FORM["cred_tsig_secret"] not in all_entry_text()


def test_an_acme_account_is_recorded_without_the_eab_key(session_api, alice):
    with mock.patch("certs.accounts.new_client", return_value=FakeCA()):
        session_api.post("/api/v1/acme-accounts/", {"ca": "zerossl", "email": "alice@example.com",
                                                    "eab_kid": "kid-1", "eab_hmac_key": EAB_HMAC}, format="json")
    entry = only_entry(object_type=ObjectType.ACME_ACCOUNT)
    assert (entry.action, entry.object_id) == (Action.CREATE, str(AcmeAccount.objects.get().pk))
    assert_by(entry, alice)
    assert EAB_HMAC not in all_entry_text()


def test_a_notification_channel_is_recorded_without_its_url(session_api, alice):
    session_api.post("/api/v1/notification-channels/", {"name": "ops hook", "url": CHANNEL_URL}, format="json")
    channel = NotificationChannel.objects.get()
    session_api.delete(f"/api/v1/notification-channels/{channel.pk}/")
    changes = entries(object_type=ObjectType.NOTIFICATION_CHANNEL)
    assert [(e.action, e.object_label) for e in changes] == [(Action.CREATE, "ops hook"), (Action.DELETE, "ops hook")]
    assert_by(changes[0], alice)
    assert "hook-secret-77" not in all_entry_text()


def test_an_install_target_is_recorded(session_api, alice, home_root):
    tmp_path = home_root / "alice"  # her install paths lie in her home
    certificate = make_certificate(alice, ["a.example.com"])
    with mock.patch("panel.deployment.dispatch.INSTALL_CERTIFICATE.delay"):
        session_api.post("/api/v1/install-targets/", {"certificate": certificate.pk,
                                                      "fullchain_path": f"{tmp_path}/fullchain.pem"}, format="json")
    target = InstallTarget.objects.get()
    session_api.delete(f"/api/v1/install-targets/{target.pk}/")
    changes = entries(object_type=ObjectType.INSTALL_TARGET)
    assert [(e.action, e.object_label) for e in changes] == [(Action.CREATE, f"{tmp_path}/fullchain.pem"),
                                                             (Action.DELETE, f"{tmp_path}/fullchain.pem")]
    assert_by(changes[1], alice)


def test_tokens_made_and_revoked_in_the_ui_are_recorded_without_the_key(alice_client, alice):
    response = alice_client.post(reverse("ui:token-list"), {"name": "backup", "scope": "read"}, follow=True)
    key = response.context["new_key"]
    token = tokens.own_tokens(alice).get()
    alice_client.post(reverse("ui:token-revoke", args=[token.pk]))
    changes = entries(object_type=ObjectType.API_TOKEN)
    assert [(e.action, e.object_id) for e in changes] == [(Action.CREATE, str(token.pk)),
                                                          (Action.REVOKE, str(token.pk))]
    for entry in changes:
        assert_by(entry, alice)
    assert key not in all_entry_text()


def test_a_token_made_on_the_command_line_is_recorded_as_the_system_for_its_owner(alice):
    from django.core.management import call_command

    call_command("create_api_token", "alice", "--name", "ci", stdout=mock.MagicMock())
    entry = only_entry(object_type=ObjectType.API_TOKEN)
    assert (entry.action, entry.actor, entry.via, entry.address) == (Action.CREATE, alice, Via.SYSTEM, None)


# --- issuance, revocation, private keys


def test_issuance_by_the_worker_is_recorded_for_the_owner(alice):
    certificate = Certificate.objects.create(owner=alice, account=make_account(alice), domains=["a.example.com"])
    leaf_pem, chain_pem, key_pem, _ = make_chain(["a.example.com"])
    order = Order.objects.create(owner=alice, certificate=certificate, private_key=key_pem,
                                 status=Order.Status.FINALIZING)
    with mock.patch("panel.deployment.dispatch.queue_installs"):
        orders._store_version(order, chain_pem)
        orders._store_version(order, chain_pem)  # a re-delivered step stores nothing new
    certificate.refresh_from_db()
    entry = only_entry(action=Action.ISSUE)
    assert (entry.actor, entry.via, entry.address) == (alice, Via.SYSTEM, None)
    assert (entry.object_type, entry.object_id) == (ObjectType.CERTIFICATE_VERSION, str(certificate.current_version_id))
    assert entry.details == {"serial": certificate.current_version.serial, "renewal": False}


def test_revocation_in_the_ui_and_the_api_is_recorded_with_its_reason(alice_client, session_api, alice, ca):
    first = make_certificate(alice, ["a.example.com"]).current_version
    second = make_certificate(alice, ["b.example.com"]).current_version
    alice_client.post(reverse("ui:version-revoke", args=[first.pk]), {"reason": "superseded"})
    session_api.post(f"/api/v1/certificate-versions/{second.pk}/revoke/", {"reason": "keyCompromise"}, format="json")
    revocations = entries(action=Action.REVOKE)
    assert [(e.object_type, e.object_id, e.details) for e in revocations] == [
        (ObjectType.CERTIFICATE_VERSION, str(first.pk), {"reason": "superseded"}),
        (ObjectType.CERTIFICATE_VERSION, str(second.pk), {"reason": "keyCompromise"})]
    for entry in revocations:
        assert_by(entry, alice)


def test_private_key_downloads_are_recorded_and_public_ones_are_not(alice_client, token_api, alice):
    version = make_certificate(alice, ["a.example.com"]).current_version
    alice_client.get(reverse("ui:version-download", args=[version.pk, "fullchain"]))
    alice_client.post(reverse("ui:version-download", args=[version.pk, "pem-key"]))
    alice_client.post(reverse("ui:version-download", args=[version.pk, "pfx"]), {"password": "pfx-pass-1"})
    alice_client.post(reverse("ui:version-download", args=[version.pk, "pfx"]))  # refused: no password
    download = f"/api/v1/certificate-versions/{version.pk}/download/"
    assert token_api.post(download + "?format=pem-key").status_code == 200
    downloads = entries(action=Action.KEY_DOWNLOAD)
    assert [(e.details["format"], e.via) for e in downloads] == [("pem-key", Via.UI), ("pfx", Via.UI),
                                                                 ("pem-key", Via.API_TOKEN)]
    for entry in downloads:
        assert_by(entry, alice, via=entry.via)
        assert entry.object_id == str(version.pk)
    assert "pfx-pass-1" not in all_entry_text()
    key_line = version.private_key.splitlines()[1]
    assert key_line not in json.dumps([e.details for e in AuditEntry.objects.all()])


# --- the address


@pytest.mark.parametrize("remote, forwarded, recorded", [
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a trusted proxy: its header is ignored
    ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
    ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.3", "198.51.100.1"),  # the nearest untrusted hop
    ("10.0.0.2", "garbage", "10.0.0.2"),
])
def test_x_forwarded_for_is_believed_only_from_trusted_proxies(alice, settings, remote, forwarded, recorded):
    import ipaddress

    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    Client(REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded).post(
        reverse("login"), {"username": "alice", "password": "pw-alice-123"})
    assert only_entry(action=Action.LOGIN).address == recorded


# --- the page


@pytest.fixture
def admin_client(db):
    admin = get_user_model().objects.create_superuser("root", password="pw-root-123")
    client = Client()
    client.force_login(admin)
    return client


def test_only_staff_see_the_audit_log_or_its_link(alice_client, admin_client):
    assert alice_client.get(reverse("ui:audit-log")).status_code == 404
    assert reverse("ui:audit-log") not in alice_client.get(reverse("ui:site-list")).content.decode()
    assert Client().get(reverse("ui:audit-log")).status_code == 302  # to the login page
    assert admin_client.get(reverse("ui:audit-log")).status_code == 200
    assert reverse("ui:audit-log") in admin_client.get(reverse("ui:site-list")).content.decode()


def test_the_filters_narrow_the_log(admin_client, alice, bob, site):
    audit.AuditEntry.objects.all().delete()
    Client(REMOTE_ADDR="192.0.2.7").post(reverse("login"), {"username": "bob", "password": "nope"})
    Client().post(reverse("login"), {"username": "alice", "password": "pw-alice-123"})
    old = audit.record(None, Action.DELETE, site)
    AuditEntry.objects.filter(pk=old.pk).update(at=old.at - datetime.timedelta(days=10))

    def shown(**filters):
        page = admin_client.get(reverse("ui:audit-log"), filters).context["page"]
        return [(e.action, e.object_label) for e in page]

    assert shown(user="bob") == [(Action.LOGIN_FAILED, "bob")]
    assert shown(action="login") == [(Action.LOGIN, "alice")]
    assert shown(object_type="site") == [(Action.DELETE, "a.example.com")]
    assert shown(address="192.0.2.7") == [(Action.LOGIN_FAILED, "bob")]
    today = datetime.date.today()
    assert shown(until=(today - datetime.timedelta(days=5)).isoformat()) == [(Action.DELETE, "a.example.com")]
    assert len(shown(since=(today - datetime.timedelta(days=1)).isoformat())) == 2


def test_the_page_costs_the_same_queries_for_few_or_many_entries(admin_client, alice, site):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(reverse("ui:audit-log")).status_code == 200
        return len(captured)

    audit.record(None, Action.CHANGE, site)
    few = queries()
    for _ in range(150):
        audit.record(None, Action.CHANGE, site)
    assert queries() == few
    html = admin_client.get(reverse("ui:audit-log"), {"page": 2}).content.decode()
    assert "Page 2 of 2" in html
