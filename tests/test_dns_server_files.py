"""DNS provider options that reach this server's own files or UNIX sockets are for administrators
only: localzone and OCI as a whole, and a value naming a file or socket (a TransIP key path,
Google Cloud DNS `file::`, PowerDNS over a socket). The UI, the API and the importers are
refused alike, with the provider or the field named; rows saved earlier no longer work."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from certs import dns_credentials
from certs.importers import store
from certs.models import DnsCredential
from tests.test_import_store import LETSENCRYPT, Home, pki  # noqa: F401 - pki is a fixture

ZONE_FILE = """$ORIGIN example.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@ IN NS ns1
ns1 IN A 127.0.0.1
"""
TRANSIP_KEY = {"auth_username": "alice", "auth_api_key": "/etc/certpanel/transip.pem"}


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", password="pw-root-123")


@pytest.fixture
def zone_file(tmp_path):
    path = tmp_path / "example.test.zone"
    path.write_text(ZONE_FILE)
    return path


def api_create(client, provider, credentials):
    return client.post("/api/v1/dns-credentials/", {"provider": provider, "name": "n", "credentials": credentials},
                       content_type="application/json")


def test_a_user_cannot_save_localzone_through_the_api(alice_client, zone_file):
    response = api_create(alice_client, "localzone", {"filename": str(zone_file), "zone": "example.test"})

    assert response.status_code == 400
    assert "for administrators only" in json.dumps(response.json())
    assert not DnsCredential.objects.exists()


def test_an_administrator_can_save_localzone(client, root, zone_file):
    client.force_login(root)

    response = api_create(client, "localzone", {"filename": str(zone_file), "zone": "example.test"})

    assert response.status_code == 201
    assert DnsCredential.objects.get().owner == root


@pytest.mark.parametrize(("provider", "credentials", "label"), [
    ("powerdns", {"auth_token": "k", "pdns_server": "/run/pdns/pdns.sock"}, "API URL"),
    ("transip", TRANSIP_KEY, "API key"),
    ("googleclouddns", {"auth_service_account_info": "file::/etc/certpanel/gcloud.json"}, "Service account info"),
])
def test_a_user_cannot_give_a_file_or_socket_of_this_server(alice_client, provider, credentials, label):
    response = api_create(alice_client, provider, credentials)

    assert response.status_code == 400
    message = json.dumps(response.json())
    assert label in message and "a file or UNIX socket on this server is for administrators only" in message
    assert not DnsCredential.objects.exists()


@pytest.mark.parametrize(("provider", "credentials"), [
    ("powerdns", {"auth_token": "k", "pdns_server": "https://pdns.example.com:8081"}),
    ("transip", {"auth_username": "alice", "auth_api_key": "base64::LS0tLS1CRUdJTg=="}),
    ("googleclouddns", {"auth_service_account_info": "base64::e30="}),
])
def test_a_user_can_give_the_value_itself(alice_client, provider, credentials):
    assert api_create(alice_client, provider, credentials).status_code == 201


def test_the_page_refuses_a_socket_path_naming_the_field(alice_client):
    response = alice_client.post(reverse("ui:dns-credential-add"), {
        "provider": "powerdns", "name": "pdns", "cred_auth_token": "k", "cred_pdns_server": "/run/pdns/pdns.sock",
        "cred_pdns_server_id": "localhost"})

    assert response.status_code == 200
    assert "API URL: a file or UNIX socket on this server is for administrators only" in response.content.decode()
    assert not DnsCredential.objects.exists()


def test_the_provider_list_says_which_are_for_administrators(alice_client):
    chooser = alice_client.get(reverse("ui:dns-credential-add")).content.decode()
    step_two = alice_client.get(reverse("ui:dns-credential-add"), {"provider": "localzone"}).content.decode()
    listing = {entry["code"]: entry for entry in alice_client.get("/api/v1/dns-providers/").json()}

    assert "(administrators only)" in chooser
    assert "for administrators only" in step_two and 'name="cred_filename"' not in step_two
    assert listing["localzone"]["admin_only"] and listing["oci"]["admin_only"]
    assert not listing["cloudflare"]["admin_only"]
    pdns_server = next(f for f in listing["powerdns"]["fields"] if f["name"] == "pdns_server")
    assert pdns_server["server_path"] and "administrators only" in pdns_server["help"]


def test_an_import_for_a_user_is_refused_a_key_file(alice, pki, queued):  # noqa: F811
    home = Home(pki, directory_url=LETSENCRYPT)
    home.add(["*.t.example.com"], challenge="dns-01", dns_provider="transip", dns_credentials=TRANSIP_KEY)

    report = store.import_found(home.found(), alice)

    assert not DnsCredential.objects.exists()
    assert "API key: a file or UNIX socket on this server is for administrators only" in "\n".join(
        report.items[-1].messages)


def test_a_localzone_credential_saved_earlier_no_longer_touches_the_file(alice, zone_file):
    credential = DnsCredential.objects.create(owner=alice, provider="localzone", name="old", credentials=json.dumps(
        {"filename": str(zone_file), "zone": "example.test"}))

    ok, message = dns_credentials.test_credential(credential)

    assert not ok and "for administrators only" in message
    assert zone_file.read_text() == ZONE_FILE
