"""At phone width (390 px) no page of the panel is wider than the screen: every page of the
navigation (logged in as the administrator, who sees them all), one site's tabs, one
certificate and the user menu's pages, in Chinese and in English. (The stack runs with DEBUG on,
so a 404 there is Django's debug page, not the panel's: tests/test_error_pages.py has those.)

Screenshots land in test-artifacts/<test>/ at the repository root.
"""

from django.urls import reverse

from tests.e2e.test_browser import PHONE_VIEWPORT, log_in, main_navigation
from tests.e2e.test_issuance import issue, wait_for_status
from tests.support.browser import BrowserSession

# How wide the document is against how wide the window is.
WIDTHS = "() => [document.documentElement.scrollWidth, window.innerWidth]"


def test_no_page_is_wider_than_a_phone(request, chromium, panel_stack):
    certificate = issue(panel_stack, ["phone.example.test", "www.phone.example.test"], "ec256")
    assert wait_for_status(panel_stack, certificate["id"], "valid")["order"]["status"] == "valid"
    site = next(site for site in panel_stack.api("GET", "/api/v1/sites/").json()["results"]
                if site["domains"][0] == "phone.example.test")
    # A second site, without a certificate and with long names: the list's "none" link and wrapping.
    root = panel_stack.www_dir / "bare"
    root.mkdir(parents=True)
    bare = panel_stack.api("POST", "/api/v1/sites/", {
        "domains": ["a-rather-long-subdomain-name.phone-without-certificate.example.test",
                    "www.a-rather-long-subdomain-name.phone-without-certificate.example.test"],
        "root": str(root)})
    assert bare.status_code == 201, bare.text

    session = BrowserSession(chromium, panel_stack.web_url, request.node.name)
    try:
        page = session.page
        page.set_viewport_size(PHONE_VIEWPORT)
        log_in(session, panel_stack)  # in English; the language cookie below picks each language
        links = main_navigation(page).get_by_role("link").all()
        pages = {link.get_attribute("href") for link in links}
        assert reverse("ui:audit-log") in pages, pages  # the administrator's entries are there too
        pages |= {reverse("ui:site-add"), reverse("ui:security"), reverse("ui:token-list"),
                  reverse("ui:certificate-detail", args=[certificate["id"]])}
        site_page = reverse("ui:site-detail", args=[site["id"]])
        site_tabs = [f"{site_page}#{tab}" for tab in ("overview", "certificate", "nginx-config")]

        too_wide = {}
        for language in ("zh-hans", "en"):
            session.context.add_cookies([{"name": "django_language", "value": language,
                                          "url": panel_stack.web_url}])
            for path in sorted(pages) + site_tabs:
                page.goto(path)
                page.wait_for_load_state("networkidle")  # parts htmx loads after the page
                width, window = page.evaluate(WIDTHS)
                assert window == PHONE_VIEWPORT["width"]
                if width > window:
                    too_wide[f"{language} {path}"] = width
                shot = path.strip("/").replace("/", "-").replace("#", "-") or "home"
                session.screenshot(f"{language}-{shot}")
        assert not too_wide, f"pages wider than {PHONE_VIEWPORT['width']} px: {too_wide}"
    finally:
        session.close()
