""""Send test" in a real browser against a channel that never answers: the button says it is
working and cannot be pressed twice, and the page comes back within the test's time limit
saying there was no answer (certs.notifications.TEST_TIMEOUT_SECONDS)."""

import time

from playwright.sync_api import expect

from certs.notifications import TEST_TIMEOUT_SECONDS
from tests.e2e.test_browser import log_in
from tests.test_ui_notifications import silent_port  # noqa: F401 - the fixture


def test_send_test_shows_it_works_and_gives_up_in_time(browser_session, panel_stack, silent_port):
    session, page = browser_session, browser_session.page
    # The stack's user is an administrator: its channels may reach loopback. apprise's own read
    # timeout (4 s unless the URL says otherwise) would answer first: the URL says a minute.
    url = f"json://127.0.0.1:{silent_port}/hook?cto=60&rto=60"
    created = panel_stack.api("POST", "/api/v1/notification-channels/",
                              json={"name": "Silent hook", "url": url})
    assert created.status_code == 201, created.text
    log_in(session, panel_stack)
    page.goto("/notifications/")
    # While the page waits for the answer, Playwright waits for the navigation: the page notes
    # the button as it is a moment after the click, where the next page can read it.
    page.evaluate("""() => document.addEventListener("submit", () => setTimeout(() => {
        const button = document.querySelector("form[data-busy] button");
        sessionStorage.setItem("busy", JSON.stringify({
            disabled: button.disabled, label: button.textContent,
            busy: button.form.getAttribute("aria-busy")}));
    }, 200))""")

    started = time.monotonic()
    page.get_by_role("button", name="Send test").click()

    expect(page.locator(".alert--error")).to_contain_text(
        f"“Silent hook” did not work: No answer within {TEST_TIMEOUT_SECONDS} seconds",
        timeout=(TEST_TIMEOUT_SECONDS + 15) * 1000)
    assert time.monotonic() - started < TEST_TIMEOUT_SECONDS + 10
    assert page.evaluate("() => JSON.parse(sessionStorage.getItem('busy'))") == {
        "disabled": True, "label": "Sending…", "busy": "true"}
    expect(page.get_by_role("button", name="Send test")).to_be_enabled()
    session.screenshot("no-answer")
