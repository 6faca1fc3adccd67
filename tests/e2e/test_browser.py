"""The panel in a real browser (Debian's headless Chromium) against a real stack and Pebble.

Screenshots of every page visited land in test-artifacts/<test>/ at the repository root.
"""

import re
import signal

from cryptography import x509
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.test_issuance import issue, served, wait_for_status
from tests.support import make_listener_certificates

# Waits that include a whole ACME order on two loaded cores.
ORDER_TIMEOUT_MS = 90_000
PHONE_VIEWPORT = {"width": 390, "height": 844}


def log_in(session, stack):
    page = session.page
    page.goto("/")
    page.get_by_label("Username").fill(stack.username)
    page.get_by_label("Password").fill(stack.password)
    page.get_by_role("button", name="Log in").click()
    expect(main_navigation(page)).to_be_visible()
    expect(page.locator(".user-menu summary")).to_contain_text(stack.username)


def main_navigation(page):
    return page.get_by_role("navigation", name="Main")


def test_a_user_adds_a_site_and_an_account_and_watches_the_certificate_become_valid(browser_session, panel_stack):
    session, page = browser_session, browser_session.page
    domain = "browser.example.test"
    root = panel_stack.www_dir / domain
    root.mkdir(parents=True)
    (root / "index.html").write_text("hello from the browser test\n")

    page.goto("/")
    session.screenshot("login")
    log_in(session, panel_stack)

    main_navigation(page).get_by_role("link", name="Sites").click()
    page.get_by_role("link", name="Add site", exact=True).click()
    page.get_by_label("Domains").fill(domain)
    page.get_by_label("Document root").fill(str(root))
    session.screenshot("site-add")
    page.get_by_role("button", name="Add site").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(domain)

    main_navigation(page).get_by_role("link", name="ACME accounts").click()
    page.get_by_role("link", name="Add ACME account").click()
    page.get_by_label("Certificate authority").select_option(label="Other CA: enter its directory URL")
    page.get_by_label("ACME directory URL").fill(panel_stack.pebble.directory_url)
    page.get_by_label("E-mail").fill("ops@example.com")
    session.screenshot("account-add")
    page.get_by_role("button", name="Register account").click()
    expect(page.get_by_role("cell", name="ops@example.com")).to_be_visible()

    main_navigation(page).get_by_role("link", name="Sites").click()
    page.get_by_role("link", name=domain).click()
    page.get_by_role("link", name="SSL", exact=True).click()  # the site page's tab with the certificate
    status = page.locator("#certificate-status")
    # The worker is paused until the page shows the running order, so on any machine the
    # certificate turns valid while the user is looking at the page, not before it loads.
    panel_stack.worker.signal_group(signal.SIGSTOP)
    try:
        page.get_by_role("button", name="Issue certificate").click()
        expect(status).to_contain_text("Being issued")
        session.screenshot("site-issuing")
        page.evaluate("window.__loadedOnce = true")  # gone if the page is reloaded
    finally:
        panel_stack.worker.signal_group(signal.SIGCONT)

    expect(status.get_by_text("Valid", exact=True).first).to_be_visible(timeout=ORDER_TIMEOUT_MS)
    assert page.evaluate("window.__loadedOnce") is True, "the page was reloaded"
    expect(status.locator(".order .badge")).to_have_text("Valid")
    certificate = panel_stack.api("GET", "/api/v1/certificates/").json()["results"][0]
    expect(status.get_by_text(certificate["serial"], exact=True)).to_be_visible()
    # The version history below the card follows without a reload too.
    expect(page.locator("#certificate-history")).to_contain_text(certificate["serial"])
    session.screenshot("site-valid")


def dashboard_counts(page):
    main_navigation(page).get_by_role("link", name="Dashboard").click()
    counts = page.locator("[data-count]")
    return {counts.nth(i).get_attribute("data-count"): int(counts.nth(i).locator(".stat__count").inner_text())
            for i in range(counts.count())}


def test_an_uploaded_certificate_is_attached_to_its_site_served_and_counted(browser_session, panel_stack, tmp_path):
    session, page = browser_session, browser_session.page
    log_in(session, panel_stack)
    assert dashboard_counts(page) == {"sites": 0, "valid": 0, "expiring": 0, "failing": 0,
                                      "rejected_sites": 0}
    session.screenshot("dashboard-empty")

    domain = "upload.example.test"
    root = panel_stack.www_dir / domain
    root.mkdir(parents=True)
    site = panel_stack.api("POST", "/api/v1/sites/", {"domains": [domain], "root": str(root)})
    assert site.status_code == 201, site.text
    # A certificate from a CA of our own, as files a user would have been given.
    ca_file, certificate_file, key_file = make_listener_certificates(tmp_path / "issued-elsewhere", names=(domain,),
                                                                     ips=())

    main_navigation(page).get_by_role("link", name="Certificates").click()
    page.get_by_role("link", name="Upload a certificate").click()
    page.get_by_label("Attach to site").select_option(label=domain)
    page.get_by_label("…or a certificate file").set_input_files(certificate_file)
    page.get_by_label("…or a chain file").set_input_files(ca_file)
    page.get_by_label("…or a key file").set_input_files(key_file)
    session.screenshot("certificate-upload")
    page.get_by_role("button", name="Upload", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(domain)
    status = page.locator("#certificate-status")
    expect(status.locator(".badge").first).to_have_text("Valid")
    uploaded = x509.load_pem_x509_certificate(certificate_file.read_bytes())
    serial = format(uploaded.serial_number, "x")
    expect(status.get_by_text(serial, exact=True)).to_be_visible()
    session.screenshot("site-with-upload")
    served(panel_stack, domain, serial)

    # make_listener_certificates' leaf lives 7 days: it counts as expiring within 14 days.
    assert dashboard_counts(page) == {"sites": 1, "valid": 0, "expiring": 1, "failing": 0,
                                      "rejected_sites": 0}
    session.screenshot("dashboard")


# A run of ASCII letters with a lower-case letter in it is an English word; all-capital ones are
# protocol and key names that stay as they are in Chinese (HTTPS, DNS-01, RSA, UTC...).
ENGLISH_WORD = re.compile(r"[A-Za-z]*[a-z][A-Za-z]*")
NAMES_KEPT_IN_EVERY_LANGUAGE = {"nginx", "certbot"}
# A CA's name, as the CA writes it in Chinese too (the SSL tab's one-click button).
PROPER_NAMES = ("Let's Encrypt",)
# Text a user reads as a label, not data: headings, labels, buttons, table and list headers, badges,
# help and small print. textContent, not innerText: CSS may print a header in capitals.
LABEL_SELECTOR = "h1, h2, h3, h4, label, legend, summary, button, a.button, th, dt, .badge, .help, .small, nav a"
VISIBLE_LABELS_IN_PAGE_LANGUAGE = """selector => Array.from(document.querySelectorAll(selector))
    .filter(el => el.checkVisibility() && el.closest("[lang]").lang === document.documentElement.lang)
    .map(el => el.textContent.replace(/\\s+/g, " ").trim())
    .filter(text => text)"""


# A file name, path, address or number is data (site-1.conf, /var/www, HTTP-01); only ASCII, so a
# Chinese sentence around it, written without spaces, is still checked.
ASCII_DATA = re.compile(r"[\w-]*[./@:=_\d][\w./@:=-]*", re.ASCII)


def english_words(text, user_data):
    # www.a.test before a.test
    for value in sorted([*user_data, *PROPER_NAMES], key=len, reverse=True):
        text = text.replace(value, " ")
    text = ASCII_DATA.sub(" ", text)
    return [word for word in ENGLISH_WORD.findall(text) if word not in NAMES_KEPT_IN_EVERY_LANGUAGE]


def test_the_site_page_in_simplified_chinese_has_no_english_label(browser_session, panel_stack):
    session, page = browser_session, browser_session.page
    domains = ["zh.example.test", "www.zh.example.test"]
    certificate = wait_for_status(panel_stack, issue(panel_stack, domains, "ec256")["id"], "valid")
    assert certificate["order"]["status"] == "valid", certificate
    site = panel_stack.api("GET", "/api/v1/sites/").json()["results"][0]

    log_in(session, panel_stack)
    page.goto(reverse("ui:site-detail", args=[site["id"]]))
    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    # Every tab of the page, and every part of the SSL tab, including the issue form folded away
    # once a certificate exists.
    labels = []
    for tab in page.locator("nav.tabs a").all():
        tab.click()
        folded = page.locator("details:not([open]) > summary:visible")
        while folded.count():
            folded.first.click()
        page.wait_for_load_state("networkidle")  # the version history and the config preview arrive later
        session.screenshot(f"site-zh-hans-{tab.get_attribute('href').lstrip('#')}")
        labels += page.evaluate(VISIBLE_LABELS_IN_PAGE_LANGUAGE, LABEL_SELECTOR)
    assert len(labels) > 20, labels  # the card, the history and the form were all there
    user_data = [*domains, certificate["issuer"], panel_stack.username]
    english = {label: words for label in labels if (words := english_words(label, user_data))}
    assert not english, f"English left on the Chinese site page: {english}"


def test_no_page_requests_anything_outside_the_panel(browser_session, panel_stack):
    session, page = browser_session, browser_session.page
    certificate = issue(panel_stack, ["pages.example.test"], "ec256")
    assert wait_for_status(panel_stack, certificate["id"], "valid")["order"]["status"] == "valid"
    site = panel_stack.api("GET", "/api/v1/sites/").json()["results"][0]

    page.goto("/")
    session.screenshot("login")
    log_in(session, panel_stack)
    # Every page the navigation offers (an admin sees them all), and the pages of one site and
    # one certificate, which the navigation reaches through the lists.
    navigation = main_navigation(page).get_by_role("link")
    pages = {link.inner_text(): link.get_attribute("href") for link in navigation.all()}
    assert {"Sites", "Certificates", "Renewals", "ACME accounts", "DNS credentials"} <= set(pages), pages
    pages["Site"] = reverse("ui:site-detail", args=[site["id"]])
    pages["Add site"] = reverse("ui:site-add")
    pages["Certificate"] = reverse("ui:certificate-detail", args=[certificate["id"]])

    for name, path in pages.items():
        response = page.goto(path)
        assert response.ok, f"{name}: {response.status}"
        page.wait_for_load_state("networkidle")  # parts loaded by htmx after the page
        session.screenshot(name.lower().replace(" ", "-"))
    page.set_viewport_size(PHONE_VIEWPORT)
    for name in ("Sites", "Site"):
        page.goto(pages[name])
        session.screenshot(f"{name.lower()}-phone")

    assert len(session.requested_urls) > 2 * len(pages)  # pages and their assets were seen
    assert session.foreign_requests() == []
