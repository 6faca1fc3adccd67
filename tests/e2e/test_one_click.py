"""One click to HTTPS in a real browser, as the README's walkthrough goes: the administrator makes
the test's Pebble the default CA on Settings, adds a site by its domain alone, and presses the
CA's button on the SSL tab; no account page is visited, and nginx serves the certificate."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import _register
from tests.e2e.test_browser import ORDER_TIMEOUT_MS, log_in, main_navigation
from tests.e2e.test_issuance import served
from tests.support import PanelStack
from tests.support.browser import BrowserSession


@pytest.fixture
def stack(request, tmp_path, pebble, redis_server):
    stack = PanelStack(tmp_path / "panel", pebble, redis_server,
                       extra_env={"CERTPANEL_EXTRA_CAS": f"pebble={pebble.directory_url}"})
    _register(request, stack)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def session(request, chromium, stack):
    session = BrowserSession(chromium, stack.web_url, request.node.name)
    yield session
    session.close()


def test_one_click_from_a_new_site_to_a_served_certificate(session, stack):
    page = session.page
    log_in(session, stack)
    main_navigation(page).get_by_role("link", name="Settings").click()
    page.get_by_label("Default certificate authority").select_option("pebble")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()

    domain = "one-click.example.test"
    main_navigation(page).get_by_role("link", name="Sites").click()
    page.get_by_role("link", name="Add site", exact=True).click()
    page.get_by_label("Domains").fill(domain)
    page.get_by_role("button", name="Add site").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(domain)

    page.get_by_role("link", name="SSL", exact=True).click()
    session.screenshot("one-click-offered")
    page.get_by_role("button", name="pebble", exact=True).click()
    status = page.locator("#certificate-status")
    expect(status.locator(".order .badge")).to_have_text("Valid", timeout=ORDER_TIMEOUT_MS)
    session.screenshot("one-click-valid")

    certificate = stack.api("GET", "/api/v1/certificates/").json()["results"][0]
    assert certificate["domains"] == [domain]
    served(stack, domain, certificate["serial"])
    accounts = stack.api("GET", "/api/v1/acme-accounts/").json()["results"]
    assert [a["directory_url"] for a in accounts] == [stack.pebble.directory_url]
    assert not any("/acme-accounts/" in url for url in session.requested_urls)
