"""The first ten minutes of a BT (宝塔) panel user, in 简体中文, in a real browser.

A fresh panel (nginx, Redis, Celery, Pebble resolving through a real BIND): the administrator picks
the CA for one-click certificates, adds a site by its domain alone, gets a served certificate in one
click without visiting the account page, ticks the wildcard and completes manual DNS-01 with the TXT
records added out of band, switches to English and back. On every page on the way no English word
is left in a visible label or message, and at 390 px no page of the navigation is wider than the
phone. Screenshots at 1280 px and 390 px land in test-artifacts/<test>/.
"""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.test_browser import LABEL_SELECTOR, PHONE_VIEWPORT, VISIBLE_LABELS_IN_PAGE_LANGUAGE, english_words
from tests.e2e.test_dns01 import dns_stack  # noqa: F401 - the fixture this test runs on
from tests.e2e.test_issuance import served
from tests.e2e.test_phone_width import WIDTHS
from tests.support.browser import BrowserSession

DOMAIN = "wild.example.test"
# Waits that include a whole ACME order on two loaded cores.
ORDER_TIMEOUT_MS = 90_000
# What a user reads besides labels: flash messages, alerts, help, the order's log.
MESSAGE_SELECTOR = ".messages li, .alert, .errorlist li, p.help, .order-log li"


class ChineseReader:
    """Collects what each page shows a reader of Simplified Chinese, and the English left in it."""

    def __init__(self, session, user_data):
        self.session, self.page, self.user_data = session, session.page, user_data
        self.english = {}

    def read(self, name):
        self.page.wait_for_load_state("networkidle")  # parts htmx loads after the page
        expect(self.page.locator("html")).to_have_attribute("lang", "zh-hans")
        self.session.screenshot(name)
        texts = self.page.evaluate(VISIBLE_LABELS_IN_PAGE_LANGUAGE, f"{LABEL_SELECTOR}, {MESSAGE_SELECTOR}")
        for text in texts:
            if words := english_words(text, self.user_data):
                self.english.setdefault(name, {})[text] = words
        return texts


@pytest.mark.dns_stack(zones=("example.test",), panel_env={"CERTPANEL_EXTRA_CAS": "pebble={pebble_directory}"})
def test_the_first_ten_minutes_in_simplified_chinese(request, chromium, dns_stack):
    stack, bind = dns_stack
    session = BrowserSession(chromium, stack.web_url, request.node.name, locale="zh-CN")
    request.addfinalizer(session.close)
    try:
        play_the_first_ten_minutes(session, stack, bind)
    except BaseException:
        session.screenshot("failure")
        raise


def play_the_first_ten_minutes(session, stack, bind):
    page = session.page
    reader = ChineseReader(session, [DOMAIN, f"*.{DOMAIN}", "pebble", stack.username, f"{stack.username}@example.test"])

    page.goto("/")
    reader.read("01-login")
    page.get_by_label("用户名").fill(stack.username)
    page.get_by_label("密码").fill(stack.password)
    page.get_by_role("button", name="登录").click()
    navigation = page.get_by_role("navigation", name="主导航")
    expect(navigation).to_be_visible()
    reader.read("02-dashboard")

    # The administrator chooses the CA users get in one click (here the local Pebble).
    navigation.get_by_role("link", name="设置").click()
    page.get_by_label("默认证书颁发机构（CA）").select_option("pebble")
    page.get_by_role("button", name="保存").click()
    reader.read("03-settings-saved")

    # A site by its domain alone: the panel proposes the document root and creates it.
    navigation.get_by_role("link", name="网站").click()
    page.get_by_role("link", name="添加网站", exact=True).click()
    page.wait_for_load_state()  # its script proposes the root as the domain is typed
    page.get_by_label("域名").fill(DOMAIN)
    expect(page.get_by_label("根目录")).to_have_attribute("placeholder", f"{stack.data_dir}/home/{stack.username}/{DOMAIN}")
    reader.read("04-site-add")
    page.get_by_role("button", name="添加网站").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(DOMAIN)
    reader.read("05-site-added")
    assert (stack.data_dir / "home" / stack.username / DOMAIN / "index.html").is_file()

    # One click to HTTPS: no account page on the way.
    page.get_by_role("link", name="SSL", exact=True).click()
    reader.read("06-ssl-tab")
    page.locator("form.one-click").get_by_role("button", name="pebble").click()
    status = page.locator("#certificate-status")
    expect(status.get_by_text("有效", exact=True).first).to_be_visible(timeout=ORDER_TIMEOUT_MS)
    first = stack.api("GET", "/api/v1/certificates/").json()["results"][0]
    reader.user_data.append(first["issuer"])  # the CA's own name for itself
    reader.read("07-issued")
    assert first["domains"] == [DOMAIN] and first["status"] == "valid", first
    served(stack, DOMAIN, first["serial"])
    account_pages = reverse("ui:account-list")
    assert not [url for url in session.requested_urls if account_pages in url], "an account page was visited"

    # The wildcard by a tick, with the TXT records added by hand at the DNS host.
    page.locator("summary", has_text="申请新证书").click()
    page.get_by_role("radio", name="手动添加解析记录").check()
    page.get_by_label(f"同时包含 *.{DOMAIN}").check()
    reader.read("08-wildcard-form")
    page.get_by_role("button", name="申请证书").click()
    records = page.locator(".dns-records")
    expect(records).to_be_visible(timeout=ORDER_TIMEOUT_MS)
    expect(page.locator("#txt-host-1")).to_have_value("_acme-challenge.wild")  # 主机记录, as Aliyun asks for it
    reader.read("09-txt-records")
    name = page.locator("#txt-name-1").input_value()
    values = [field.input_value() for field in records.locator("input[id^='txt-value-1-']").all()]
    # Two values, one each for the name and its wildcard, unless Pebble reused the name's
    # authorization from the first order (it does half the time, as CAs may).
    assert name == f"_acme-challenge.{DOMAIN}" and len(values) in (1, 2), (name, values)
    for value in values:
        bind.nsupdate_add_txt(name, value)
    expect(status.locator(".order .badge")).to_have_text("有效", timeout=ORDER_TIMEOUT_MS)  # no click needed
    reader.read("10-wildcard-issued")
    certificates = stack.api("GET", "/api/v1/certificates/").json()["results"]
    wildcard = next(c for c in certificates if set(c["domains"]) == {DOMAIN, f"*.{DOMAIN}"})
    assert wildcard["status"] == "valid", wildcard
    served(stack, f"www.{DOMAIN}", wildcard["serial"])
    # One certificate renews for the site: the wildcard's covers the first one's name.
    assert stack.api("GET", f"/api/v1/certificates/{first['id']}/").json()["next_renewal_at"] is None
    site = stack.api("GET", "/api/v1/sites/").json()["results"][0]
    assert f"*.{DOMAIN}" in site["domains"], site

    # English and back.
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Sites")).to_be_visible()
    session.screenshot("11-english")
    page.get_by_role("button", name="简体中文").click()
    reader.read("12-chinese-again")

    # Every page of the navigation on a phone.
    paths = [link.get_attribute("href") for link in navigation.get_by_role("link").all()]
    paths += [reverse("ui:site-detail", args=[site["id"]]), reverse("ui:certificate-detail", args=[first["id"]])]
    page.set_viewport_size(PHONE_VIEWPORT)
    too_wide = {}
    for path in paths:
        page.goto(path)
        reader.read(f"phone-{path.strip('/').replace('/', '-') or 'home'}")
        width, window = page.evaluate(WIDTHS)
        if width > window:
            too_wide[path] = width
    assert not too_wide, f"pages wider than {PHONE_VIEWPORT['width']} px: {too_wide}"

    assert not reader.english, f"English left on Chinese pages: {reader.english}"
