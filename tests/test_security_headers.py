"""Every UI page carries the Content-Security-Policy and friends, and nothing in it needs an
inline exception. Pages come from the URL resolver (every ui: pattern), not a hand list."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from certs.models import DnsCredential, NotificationChannel, ReloadPreset
from panel.security import tokens
from tests.test_ui import finish, make_account, make_site, running_order

pytestmark = pytest.mark.usefixtures("queued")  # tests/conftest.py

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
HANDLER_ATTRIBUTE = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.I)
STYLE_ELEMENT = re.compile(r"<style[\s>]", re.I)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


def ui_patterns():
    """(name, route) of every pattern in the "ui" namespace, however it is included."""
    found = []

    def walk(patterns, namespace, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, entry.namespace or namespace, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern) and namespace == "ui" and entry.name:
                found.append((entry.name, prefix + str(entry.pattern)))

    walk(get_resolver().url_patterns, None, "")
    return found


UI_PATTERNS = ui_patterns()


@pytest.fixture
def objects(alice, settings, tmp_path):
    """One of each kind of object a ui: URL can name, all Alice's."""
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    site = make_site(alice, ["a.example.com"], tmp_path / "www" / "a")
    order = running_order(site, make_account(alice))
    version = finish(order)
    credential = DnsCredential.objects.create(owner=alice, provider="cloudflare", name="cf", credentials="{}")
    preset = ReloadPreset.objects.create(name="nginx", command=["/usr/sbin/nginx", "-s", "reload"])
    channel = NotificationChannel.objects.create(owner=alice, name="hook", url="json://hooks.example.net/x")
    token, _key = tokens.issue_token(alice, "deploy script")
    # The model each URL's id refers to follows from the route's first segment.
    by_segment = {"sites": site.pk, "certificates": order.certificate_id, "orders": order.pk,
                  "dns-credentials": credential.pk, "certificate-versions": version.pk, "users": alice.pk,
                  "reload-presets": preset.pk, "notifications": channel.pk, "tokens": token.pk}
    return by_segment


def url_for(name, route, objects):
    kwargs = {}
    for key in re.findall(r"<(?:\w+:)?(\w+)>", route):
        kwargs[key] = "cert" if key == "fmt" else objects[route.split("/")[0]]
    return reverse(f"ui:{name}", kwargs=kwargs)


def test_the_resolver_gives_the_pages_of_every_part():
    names = {name for name, _ in UI_PATTERNS}
    assert {"site-list", "site-detail", "certificate-detail", "dns-credential-detail", "user-list",
            "reload-preset-list", "version-download", "order-status"} <= names


@pytest.mark.parametrize("name, route", UI_PATTERNS, ids=[name for name, _ in UI_PATTERNS])
def test_every_page_has_the_headers_and_nothing_inline(alice_client, admin_client, objects, name, route):
    url = url_for(name, route, objects)
    response = alice_client.get(url)
    if response.status_code in (403, 404):  # an admin page (the audit log answers users 404)
        response = admin_client.get(url)
    assert response.status_code in (200, 302, 405), (url, response.status_code)
    csp = response["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                      "form-action 'self'", "base-uri 'none'", "object-src 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
        html = response.content.decode()
        for pattern in (INLINE_SCRIPT, HANDLER_ATTRIBUTE, STYLE_ATTRIBUTE, STYLE_ELEMENT, JAVASCRIPT_URL):
            assert not pattern.search(html), (url, pattern.search(html).group(0))


def test_the_login_page_and_the_api_carry_the_policy_too(client, alice):
    for response in (client.get(reverse("login")), client.get("/api/v1/sites/")):
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_an_injected_inline_script_would_be_caught():
    """The checks above are not blind: they match what a careless template would contain."""
    html = '<p style="color:red" onclick="x()">a</p><script>alert(1)</script><a href="javascript:x()">b</a>'
    for pattern in (INLINE_SCRIPT, HANDLER_ATTRIBUTE, STYLE_ATTRIBUTE, JAVASCRIPT_URL):
        assert pattern.search(html)
    assert not INLINE_SCRIPT.search('<script src="/static/js/copy.js" defer></script>')
