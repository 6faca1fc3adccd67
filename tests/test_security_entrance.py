"""The security entrance (CERTPANEL_SECURITY_ENTRANCE): without it, an anonymous visitor finds nothing."""

import pytest
from django.test import Client

from panel.security import entrance as entrance_module
from panel.security import tokens

ENTRANCE = "k3y-Entr4nce_x"


@pytest.fixture
def entrance(settings):
    settings.SECURITY_ENTRANCE = ENTRANCE
    return ENTRANCE


@pytest.mark.django_db
def test_without_the_entrance_every_page_is_a_bare_404(entrance, client):
    for path in ("/login/", "/", "/dashboard/", "/sites/", "/api/v1/sites/", "/i18n/setlang/", f"/{ENTRANCE}x/",
                 f"/{ENTRANCE.upper()}/", f"/{ENTRANCE}/login/"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"CertPanel" not in response.content and b"login" not in response.content.lower()
    assert client.post("/login/", {"username": "alice", "password": "x"}).status_code == 404


@pytest.mark.django_db
def test_the_entrance_opens_the_login_page_for_this_browser_session(entrance, client, alice):
    assert client.get("/login/").status_code == 404
    response = client.get(f"/{ENTRANCE}/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/login/").status_code == 200
    assert client.get(f"/{ENTRANCE}").status_code == 302  # without the slash too
    assert client.post("/login/", {"username": "alice", "password": "pw-alice-123"}).status_code == 302
    assert client.get("/dashboard/").status_code == 200
    client.post("/logout/")
    assert client.get("/login/").status_code == 200  # logging out does not shut the door on them
    assert Client().get("/login/").status_code == 404  # another browser


def test_health_static_files_and_challenges_need_no_entrance(entrance, client):
    assert client.get("/static/img/favicon.svg").status_code == 200
    # nginx answers challenges; one that reaches the panel gets its ordinary 404, not the door's
    assert client.get("/.well-known/acme-challenge/abc").content != entrance_module.NOT_FOUND.encode()
    response = client.get("/healthz")
    assert response.status_code in (200, 503) and response.json()["checks"]


@pytest.mark.django_db
def test_the_api_with_a_token_needs_no_entrance(entrance, alice):
    _, key = tokens.issue_token(alice, "script")
    response = Client().get("/api/v1/sites/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    assert Client().get("/api/v1/sites/").status_code == 404


@pytest.mark.django_db
def test_signed_in_users_are_not_stopped(entrance, alice_client):
    assert alice_client.get("/dashboard/").status_code == 200


@pytest.mark.django_db
def test_without_an_entrance_the_login_page_answers(settings, client):
    settings.SECURITY_ENTRANCE = ""
    assert client.get("/login/").status_code == 200


@pytest.mark.parametrize("value, ok", [("abcd-1_34", True), ("abc", False), ("abcd/1234", False)])
def test_the_entrance_is_checked_at_start(value, ok):
    import os
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"],
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "panel.settings",
                                 "CERTPANEL_SECURITY_ENTRANCE": value}, capture_output=True, text=True, timeout=60)
    assert (result.returncode == 0) is ok
    if not ok:
        assert "CERTPANEL_SECURITY_ENTRANCE" in result.stderr and value not in result.stderr  # a secret
