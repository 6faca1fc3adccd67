"""Editing DNS credentials, on the page and through the API: the provider stays, other fields
show their values, a secret left empty keeps the stored one and a new one replaces it; the
checks of creation apply; another user's credentials are a 404; every edit is audited, without
a value; certificates using the credentials order with the new values.

rfc2136 is the provider (constructed offline); nothing reaches Celery or a name server."""

import json
import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from certs.dns import registry
from certs.models import AcmeAccount, Certificate, DnsCredential
from panel.security.audit import Action, AuditEntry, ObjectType
from tests.test_ui_dns import FORM_DATA, SECRET, field_error, make_credential, page_text

NEW_SECRET = "bmV3LXRzaWctc2VjcmV0LWFmdGVyLXJvdGF0aW9uLTAxMjM="

pytestmark = pytest.mark.usefixtures("queued")


@pytest.fixture
def credential(alice):
    return make_credential(alice)


def edit_url(credential):
    return reverse("ui:dns-credential-edit", args=[credential.pk])


def edit_data(**changes):
    """What the edit page posts when its fields are left as shown, with `changes`."""
    data = {key: value for key, value in FORM_DATA.items()}
    data.update(name="ns1 of example.com", cred_server="192.0.2.53", cred_port="", cred_tsig_algorithm="",
                cred_tsig_secret="", propagation_timeout="")
    data.update(changes)
    return data


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_edit_page_shows_the_values_but_never_the_secret(alice_client, credential):
    detail = page_text(alice_client.get(reverse("ui:dns-credential-detail", args=[credential.pk])))
    assert f'href="{edit_url(credential)}"' in detail

    html = page_text(alice_client.get(edit_url(credential)))
    assert 'value="192.0.2.53"' in html and 'value="certpanel-key"' in html and 'value="ns1 of example.com"' in html
    assert SECRET not in html and SECRET[:12] not in html
    assert re.search(r'<input type="password" name="cred_tsig_secret"[^>]*placeholder="Unchanged"', html)
    assert not re.search(r'<input type="password" name="cred_tsig_secret"[^>]*required', html)
    assert "leave empty to keep the stored value" in html
    assert "RFC 2136" in html and 'name="provider"' in html and "cannot be changed" in html


def test_an_empty_secret_keeps_the_stored_one(alice_client, alice, credential):
    response = alice_client.post(edit_url(credential), edit_data(name="BIND at the office", cred_server="192.0.2.54",
                                                                 propagation_timeout="120"))

    assert response["Location"] == reverse("ui:dns-credential-detail", args=[credential.pk])
    credential.refresh_from_db()
    assert (credential.provider, credential.name, credential.propagation_timeout) == (
        "rfc2136", "BIND at the office", 120)
    assert credential.values() == {"server": "192.0.2.54", "zone": "example.com", "tsig_key_name": "certpanel-key",
                                   "tsig_secret": SECRET}
    entry = AuditEntry.objects.get(action=Action.CHANGE, object_type=ObjectType.DNS_CREDENTIAL)
    assert (entry.actor, entry.object_id) == (alice, str(credential.pk))
    assert entry.details == {"fields": ["credentials", "name", "propagation_timeout"]}
    assert SECRET not in json.dumps(entry.details) and "192.0.2.54" not in json.dumps(entry.details)
    assert "DNS credentials “BIND at the office” saved." in page_text(alice_client.get(response["Location"]))


def test_a_new_secret_replaces_the_stored_one(alice_client, credential):
    response = alice_client.post(edit_url(credential), edit_data(cred_tsig_secret=NEW_SECRET))

    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.values()["tsig_secret"] == NEW_SECRET
    assert NEW_SECRET not in page_text(alice_client.get(response["Location"]))


def test_a_cleared_field_that_is_not_secret_is_removed(alice_client, credential):
    alice_client.post(edit_url(credential), edit_data(cred_zone=""))

    credential.refresh_from_db()
    assert "zone" not in credential.values() and credential.values()["tsig_secret"] == SECRET


def test_errors_are_shown_and_nothing_changes(alice_client, credential):
    html = page_text(alice_client.post(edit_url(credential), edit_data(cred_server="")))
    assert "required" in field_error(html, "cred_server")

    # The provider's own checks, on a new secret; the secret is not rendered back.
    html = page_text(alice_client.post(edit_url(credential), edit_data(cred_tsig_secret="not base64!")))
    assert re.search(r'<div class="alert alert--error" role="alert">.*TSIG secret \(base64\)', html, re.DOTALL)
    assert "not base64!" not in html and SECRET not in html

    credential.refresh_from_db()
    assert credential.values()["server"] == "192.0.2.53" and credential.values()["tsig_secret"] == SECRET
    assert not AuditEntry.objects.filter(action=Action.CHANGE).exists()


def test_the_rules_of_creation_apply_to_an_edit(alice_client, alice):
    pdns = DnsCredential.objects.create(owner=alice, provider="powerdns", name="pdns", credentials=json.dumps(
        {"auth_token": "token-1", "pdns_server": "https://pdns.example.com:8081"}))
    data = {"provider": "powerdns", "name": "pdns", "cred_auth_token": "", "cred_pdns_server_id": "localhost"}

    html = page_text(alice_client.post(edit_url(pdns), {**data, "cred_pdns_server": "/run/pdns/pdns.sock"}))
    assert "API URL: a file or UNIX socket on this server is for administrators only" in html
    html = page_text(alice_client.post(edit_url(pdns), {**data, "cred_pdns_server": "http://127.0.0.1:8081"}))
    assert "API URL: " in html and "alert--error" in html

    pdns.refresh_from_db()
    assert pdns.values()["pdns_server"] == "https://pdns.example.com:8081"


def test_another_users_credentials_are_a_404(bob_client, bob, credential):
    assert bob_client.get(edit_url(credential)).status_code == 404
    assert bob_client.post(edit_url(credential), edit_data(cred_tsig_secret=NEW_SECRET)).status_code == 404
    response = api_for(bob).patch(f"/api/v1/dns-credentials/{credential.pk}/",
                                  {"credentials": {"tsig_secret": NEW_SECRET}}, format="json")
    assert response.status_code == 404
    credential.refresh_from_db()
    assert credential.values()["tsig_secret"] == SECRET


def test_a_certificate_orders_with_the_new_values(alice_client, alice, credential):
    account = AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/directory", account_key="k",
                                         account_url="https://ca.test/acct/1")
    certificate = Certificate.objects.create(owner=alice, account=account, domains=["a.example.com"],
                                             challenge="dns-01", dns_credential=credential)

    alice_client.post(edit_url(credential), edit_data(cred_server="192.0.2.99", cred_tsig_secret=NEW_SECRET))

    provider = registry.provider_for(Certificate.objects.get(pk=certificate.pk).dns_credential)
    assert provider.values["server"] == "192.0.2.99" and provider.values["tsig_secret"] == NEW_SECRET


# --- the API


def test_the_api_patch_keeps_a_secret_left_out_or_empty(alice, credential):
    api, url = api_for(alice), f"/api/v1/dns-credentials/{credential.pk}/"

    response = api.patch(url, {"name": "renamed", "credentials": {"server": "192.0.2.60"}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "renamed" and "credentials" not in response.json()
    response = api.patch(url, {"credentials": {"tsig_secret": ""}}, format="json")
    assert response.status_code == 200
    credential.refresh_from_db()
    assert credential.values() == {"server": "192.0.2.60", "zone": "example.com", "tsig_key_name": "certpanel-key",
                                   "tsig_secret": SECRET}

    response = api.put(url, {"provider": "rfc2136", "name": "put", "credentials": {"tsig_secret": NEW_SECRET}},
                       format="json")
    assert response.status_code == 200, response.content
    credential.refresh_from_db()
    assert credential.name == "put" and credential.values()["tsig_secret"] == NEW_SECRET
    assert NEW_SECRET not in response.content.decode()


def test_the_api_keeps_the_provider_and_checks_the_values(alice, credential):
    api, url = api_for(alice), f"/api/v1/dns-credentials/{credential.pk}/"

    response = api.patch(url, {"provider": "powerdns"}, format="json")
    assert response.status_code == 400 and "cannot be changed" in json.dumps(response.json())
    response = api.patch(url, {"credentials": {"server": ""}}, format="json")
    assert response.status_code == 400
    response = api.patch(url, {"credentials": {"no_such_field": "x"}}, format="json")
    assert response.status_code == 400 and "no_such_field" in json.dumps(response.json())

    credential.refresh_from_db()
    assert (credential.provider, credential.values()["server"]) == ("rfc2136", "192.0.2.53")


@pytest.fixture
def huawei_ak_sk(alice):
    values = {"access_key_id": "AKID-OLD", "secret_access_key": "sk-old-secret-value"}
    return DnsCredential.objects.create(owner=alice, provider="huaweicloud", name="Huawei",
                                        credentials=json.dumps(values))


def test_moving_to_another_set_of_fields_removes_the_old_secret_on_the_page(alice_client, huawei_ak_sk):
    # Huawei Cloud signs in with AK/SK or as an IAM user: the user switches to the IAM user.
    html = page_text(alice_client.get(edit_url(huawei_ak_sk)))
    assert 'name="clear_secret_access_key"' in html and "Remove the stored Secret access key (SK)" in html
    response = alice_client.post(edit_url(huawei_ak_sk), {
        "provider": "huaweicloud", "name": "Huawei", "cred_access_key_id": "",
        "clear_secret_access_key": "on", "cred_iam_username": "dns-bot", "cred_iam_password": "iam-secret",
        "cred_iam_domain_name": "example-account"})
    assert response.status_code == 302, page_text(response)
    huawei_ak_sk.refresh_from_db()
    values = huawei_ak_sk.values()
    assert "secret_access_key" not in values and "access_key_id" not in values
    assert values["iam_username"] == "dns-bot" and values["iam_password"] == "iam-secret"


def test_the_api_removes_a_secret_given_null_and_keeps_one_given_empty(alice, huawei_ak_sk):
    url = f"/api/v1/dns-credentials/{huawei_ak_sk.pk}/"
    kept = api_for(alice).patch(url, {"credentials": {"secret_access_key": ""}}, format="json")
    assert kept.status_code == 200, kept.content
    huawei_ak_sk.refresh_from_db()
    assert huawei_ak_sk.values()["secret_access_key"] == "sk-old-secret-value"
    removed = api_for(alice).patch(url, {"credentials": {
        "access_key_id": "", "secret_access_key": None, "iam_username": "dns-bot", "iam_password": "iam-secret",
        "iam_domain_name": "example-account"}}, format="json")
    assert removed.status_code == 200, removed.content
    huawei_ak_sk.refresh_from_db()
    assert "secret_access_key" not in huawei_ak_sk.values()


def test_a_required_secret_offers_no_removal(alice_client, credential):
    assert 'name="clear_tsig_secret"' not in page_text(alice_client.get(edit_url(credential)))
