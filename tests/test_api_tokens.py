"""API tokens: only a hash is stored, the key is shown once, read tokens cannot write,
revoked and expired tokens are refused with a 401 that says why, and nobody sees or
revokes another user's tokens."""

import datetime
import io
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from panel.models import ApiToken
from panel.security import tokens

pytestmark = pytest.mark.usefixtures("queued")


def api(key, keyword="Token"):
    return APIClient(HTTP_AUTHORIZATION=f"{keyword} {key}")


@pytest.fixture
def alice_token(alice):
    return tokens.issue_token(alice, "deploy script")


def test_the_database_holds_a_hash_and_a_prefix_never_the_key(alice, alice_token):
    token, key = alice_token
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM panel_apitoken")
        rows = cursor.fetchall()
    assert key not in repr(rows)
    assert token.prefix == key[:len(token.prefix)] and len(token.prefix) < len(key) // 3
    assert token.key_hash == tokens.hash_key(key) != key


@pytest.mark.parametrize("keyword", ["Token", "Bearer", "bearer"])
def test_a_key_authenticates_as_its_owner_in_either_header_form(alice_token, keyword):
    response = api(alice_token[1], keyword).get("/api/v1/sites/")
    assert response.status_code == 200


def test_use_is_noted_on_the_token(alice_token):
    token, key = alice_token
    assert token.last_used_at is None
    api(key).get("/api/v1/sites/")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_read_token_reads_but_cannot_write(alice, settings, tmp_path):
    settings.ALLOWED_ROOTS = [tmp_path]
    _token, key = tokens.issue_token(alice, "monitoring", tokens.Scope.READ)
    client = api(key)
    assert client.get("/api/v1/sites/").status_code == 200
    response = client.post("/api/v1/sites/", {"domains": ["a.example.com"], "root": str(tmp_path / "a")},
                           format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "This API token is read-only."
    assert client.post("/api/v1/tokens/", {"name": "escalate"}, format="json").status_code == 403
    assert alice.sites.count() == 0 and tokens.own_tokens(alice).count() == 1


@pytest.mark.parametrize("state, message", [
    ("revoked", "This token was revoked."),
    ("expired", "This token expired on"),
    ("unknown", "Invalid token."),
])
def test_revoked_expired_and_unknown_keys_get_a_401_that_says_which(alice_token, state, message):
    token, key = alice_token
    if state == "revoked":
        tokens.revoke_token(token)
    elif state == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    else:
        key = key[:-4] + "AAAA"
    response = api(key).get("/api/v1/sites/")
    assert response.status_code == 401
    assert response.json()["detail"].startswith(message)
    assert response["WWW-Authenticate"] == "Token"


def test_a_token_with_days_left_still_works_and_says_when_it_ends(alice):
    token, key = tokens.issue_token(alice, "ci", expires_in_days=30)
    assert api(key).get("/api/v1/sites/").status_code == 200
    assert datetime.timedelta(days=29) < token.expires_at - timezone.now() <= datetime.timedelta(days=30)


def test_a_token_is_not_a_browser_login(alice_token):
    response = Client(HTTP_AUTHORIZATION=f"Token {alice_token[1]}").get(reverse("ui:site-list"))
    assert response.status_code == 302


# --- the API of tokens


def test_the_api_makes_a_token_and_shows_its_key_only_in_that_answer(alice):
    client = APIClient()
    client.force_login(alice)
    created = client.post("/api/v1/tokens/", {"name": "backup", "scope": "read", "expires_in_days": 7},
                          format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith(body["prefix"]) and (body["scope"], body["active"]) == ("read", True)
    listed = client.get("/api/v1/tokens/").json()["results"]
    shown = client.get(f"/api/v1/tokens/{body['id']}/").json()
    assert body["key"] not in repr(listed) + repr(shown)
    assert [t["name"] for t in listed] == ["backup"]
    assert api(body["key"]).get("/api/v1/sites/").status_code == 200


def test_delete_revokes_and_the_token_stays_listed_as_revoked(alice_token):
    token, key = alice_token
    client = api(key)
    assert client.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    assert api(key).get("/api/v1/tokens/").status_code == 401
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_bob_cannot_see_or_revoke_alices_tokens(alice_token, bob):
    token, _key = alice_token
    _bob_token, bob_key = tokens.issue_token(bob, "bob's")
    client = api(bob_key)
    assert [t["name"] for t in client.get("/api/v1/tokens/").json()["results"]] == ["bob's"]
    assert client.get(f"/api/v1/tokens/{token.pk}/").status_code == 404
    assert client.delete(f"/api/v1/tokens/{token.pk}/").status_code == 404
    bob_browser = Client()
    bob_browser.force_login(bob)
    assert "deploy script" not in bob_browser.get(reverse("ui:token-list")).content.decode()
    assert bob_browser.get(reverse("ui:token-revoke", args=[token.pk])).status_code == 404
    assert bob_browser.post(reverse("ui:token-revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


# --- the page


def test_the_page_shows_a_new_key_once(alice_client, alice):
    response = alice_client.post(reverse("ui:token-list"), {"name": "backup", "scope": "read-write",
                                                            "expires_in_days": ""})
    # Post/redirect/get: reloading the page that shows the key cannot make a second token.
    assert response.status_code == 302 and response["Location"] == reverse("ui:token-list")
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_data FROM django_session")
        sessions = repr(cursor.fetchall())
    shown = alice_client.get(response["Location"])
    html = shown.content.decode()
    key = re.search(r'id="new-token-key" value="([^"]+)"', html).group(1)
    assert "shown only this once" in html and "no-store" in shown["Cache-Control"]
    assert key not in sessions  # waiting for that page, it was encrypted
    assert api(key).get("/api/v1/sites/").status_code == 200
    later = alice_client.get(reverse("ui:token-list")).content.decode()
    assert key not in later and 'id="new-token-key"' not in later
    assert "backup" in later and tokens.own_tokens(alice).get().prefix in later
    assert ApiToken.objects.count() == 1


def test_a_bad_form_is_shown_again_without_a_token(alice_client):
    response = alice_client.post(reverse("ui:token-list"), {"name": "", "scope": "read-write"})
    assert response.status_code == 200 and 'class="errorlist"' in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_page_revokes_after_asking(alice_client, alice_token):
    token, key = alice_token
    confirm = alice_client.get(reverse("ui:token-revoke", args=[token.pk]))
    assert "stops working at once" in confirm.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None
    response = alice_client.post(reverse("ui:token-revoke", args=[token.pk]))
    assert response["Location"] == reverse("ui:token-list")
    assert api(key).get("/api/v1/sites/").status_code == 401
    assert "Revoked" in alice_client.get(reverse("ui:token-list")).content.decode()


def test_the_user_menu_links_to_the_tokens_page(alice_client):
    assert f'href="{reverse("ui:token-list")}"' in alice_client.get(reverse("ui:site-list")).content.decode()


# --- the command line


def test_the_command_prints_a_working_key_once_with_its_options(alice):
    out = io.StringIO()
    call_command("create_api_token", "alice", "--name", "nightly", "--scope", "read", "--expires-days", "3",
                 stdout=out)
    key = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert (token.name, token.scope, token.key_hash) == ("nightly", "read", tokens.hash_key(key))
    assert token.expires_at is not None
    assert api(key).get("/api/v1/sites/").status_code == 200
    second = io.StringIO()
    call_command("create_api_token", "alice", stdout=second)
    assert second.getvalue().strip() != key  # every run makes a new token: the old key cannot be shown again
