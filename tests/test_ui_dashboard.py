"""The frame and the dashboard: navigation, counts, the expiry chart, failures first, recent
orders, the certificate list filters the counts link to, and a fixed number of queries."""

import datetime
import itertools
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import include, path, reverse
from django.utils import timezone

import panel.ui_urls
import panel.urls
from certs.models import AcmeAccount, Certificate, CertificateVersion, Order
from panel.hosting import dashboard_views, sites
from panel.models import Site

# The URLs as they will be once an admin page exists (see test_staff_see_admin_pages_once_they_exist).
urlpatterns = panel.urls.urlpatterns[:-1] + [
    path("", include((panel.ui_urls.urlpatterns + [path("users/", dashboard_views.dashboard, name="user-list")],
                      "ui"))),
]

_serial = itertools.count(1)


@pytest.fixture
def account(alice):
    return make_account(alice)


def make_account(owner):
    return AcmeAccount.objects.create(owner=owner, directory_url="https://ca.test/directory", account_key="unused",
                                      account_url=f"https://ca.test/acct/{owner.pk}")


def make_certificate(account, name=None, days_left=None, **fields):
    """A certificate of the account's owner; with days_left, issued and expiring that many days from now."""
    number = next(_serial)
    certificate = Certificate.objects.create(owner=account.owner, account=account,
                                             domains=[name or f"c{number}.example.com"], **fields)
    if days_left is not None:
        now = timezone.now()
        version = CertificateVersion.objects.create(
            certificate=certificate, cert_pem="-", chain_pem="-", private_key="-", serial=f"{number:x}",
            issuer="CN=Test", not_before=now - datetime.timedelta(days=1),
            not_after=now + datetime.timedelta(days=days_left, hours=1))
        certificate.current_version = version
        certificate.status = fields.get("status", Certificate.Status.VALID)
        certificate.save()
    return certificate


def make_mix(account):
    """One certificate of each kind the dashboard tells apart."""
    return {
        "valid": make_certificate(account, "valid.example.com", days_left=60),
        "expiring": make_certificate(account, "expiring.example.com", days_left=10),
        "renewal failing": make_certificate(account, "renewal.example.com", days_left=20, renewal_failures=2,
                                            last_error="urn:ietf:params:acme:error:dns: NXDOMAIN looking up A"),
        "first order failed": make_certificate(account, "never.example.com", status=Certificate.Status.FAILED,
                                               last_error="urn:ietf:params:acme:error:unauthorized: 404 for token"),
        "expired": make_certificate(account, "expired.example.com", days_left=-3),
    }


def shown_counts(html):
    return {key: int(count) for key, count in
            re.findall(r'data-count="(\w+)".*?class="stat__count">(\d+)<', html, re.S)}


def page_text(response):
    assert response.status_code == 200
    return response.content.decode()


def test_home_and_login_lead_to_the_dashboard(client, alice):
    assert client.get("/")["Location"] == reverse("ui:dashboard")
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-alice-123"})
    assert response["Location"] == reverse("ui:dashboard")
    assert client.get(reverse("ui:dashboard")).status_code == 200


def test_the_dashboard_asks_anonymous_users_to_log_in(client, db):
    response = client.get(reverse("ui:dashboard"))
    assert response["Location"] == f"{reverse('login')}?next={reverse('ui:dashboard')}"


def test_navigation_lists_every_section_in_order_and_marks_the_current_one(alice_client):
    html = page_text(alice_client.get(reverse("ui:dashboard")))
    nav = re.search(r'<nav class="sidenav".*?</nav>', html, re.S).group(0)
    links = re.findall(r'<a href="([^"]+)"( aria-current="page")?>([^<]+)</a>', nav)
    assert [(href, label) for href, _current, label in links] == [
        (reverse("ui:dashboard"), "Dashboard"), (reverse("ui:site-list"), "Sites"),
        (reverse("ui:certificate-list"), "Certificates"), (reverse("ui:renewal-overview"), "Renewals"),
        (reverse("ui:dns-credential-list"), "DNS credentials"),
        (reverse("ui:account-list"), "ACME accounts"), (reverse("ui:notification-list"), "Notifications"),
    ]
    assert [label for _href, current, label in links if current] == ["Dashboard"]
    html = page_text(alice_client.get(reverse("ui:notification-list")))
    assert re.findall(r'aria-current="page">([^<]+)<', html) == ["Notifications"]


@pytest.mark.urls(__name__)
def test_staff_see_admin_pages_once_they_exist(alice_client):
    staff = get_user_model().objects.create_user("carol", password="pw-carol-123", is_staff=True,
                                                 is_superuser=True)  # an admin: panel.toolkit.access.is_admin
    staff_client = Client()
    staff_client.force_login(staff)
    html = page_text(staff_client.get(reverse("ui:dashboard")))
    assert f'<a href="{reverse("ui:user-list")}">Users</a>' in html
    assert f'<a href="{reverse("ui:settings")}">Settings</a>' in html
    assert f'<a href="{reverse("ui:audit-log")}">Audit log</a>' in html
    user_html = page_text(alice_client.get(reverse("ui:dashboard")))
    assert "Users" not in user_html and "Audit log" not in user_html and "Settings" not in user_html


def test_the_user_menu_names_the_user_and_logs_out(alice_client):
    html = page_text(alice_client.get(reverse("ui:dashboard")))
    menu = re.search(r'<details class="user-menu">.*?</details>', html, re.S).group(0)
    assert "alice" in menu and f'action="{reverse("logout")}"' in menu
    assert alice_client.post(reverse("logout"))["Location"] == reverse("login")
    assert alice_client.get(reverse("ui:dashboard")).status_code == 302


def test_counts_are_right_for_a_mix_and_leave_out_other_users_certificates(alice_client, account, bob):
    make_mix(account)
    make_certificate(account, "pending.example.com")  # first order still running: none of the three
    bobs = make_account(bob)
    make_certificate(bobs, "bob-valid.example.com", days_left=50)
    make_certificate(bobs, "bob-failing.example.com", days_left=5, renewal_failures=1, last_error="bob's error")

    html = page_text(alice_client.get(reverse("ui:dashboard")))
    assert shown_counts(html) == {"sites": 0, "valid": 1, "expiring": 1, "failing": 3,
                                  "rejected_sites": 0}
    assert "bob" not in html
    # The chart counts alice's issued certificates by days to expiry.
    for label, count in (("Expired", 1), ("7–13 days", 1), ("14–29 days", 1), ("30–59 days", 0), ("60–89 days", 1)):
        assert f"<title>{label}: {count}</title>" in html


def test_each_count_links_to_the_certificates_it_counts(alice_client, account, bob):
    make_mix(account)
    make_certificate(make_account(bob), "bob-expiring.example.com", days_left=3)
    html = page_text(alice_client.get(reverse("ui:dashboard")))
    expected = {"valid": {"valid.example.com"}, "expiring": {"expiring.example.com"},
                "failing": {"renewal.example.com", "never.example.com", "expired.example.com"}}
    for status, names in expected.items():
        link = f'{reverse("ui:certificate-list")}?status={status}'
        assert f'href="{link}"' in html
        listed = page_text(alice_client.get(link))
        assert set(re.findall(r"\b[\w-]+\.example\.com\b", listed)) == names
    everything = page_text(alice_client.get(reverse("ui:certificate-list"), {"status": "bogus"}))
    assert "valid.example.com" in everything and "never.example.com" in everything


def test_failures_come_first_with_the_cas_error(alice_client, account):
    mix = make_mix(account)
    order = Order.objects.create(owner=account.owner, certificate=mix["valid"], status=Order.Status.VALID)
    html = page_text(alice_client.get(reverse("ui:dashboard")))
    failures = html.index('id="failures"')
    assert failures < html.index("Expiries in the next 90 days") and failures < html.index("Recent orders")
    section = html[failures:html.index("</section>", failures)]
    assert "urn:ietf:params:acme:error:dns: NXDOMAIN looking up A" in section
    assert "urn:ietf:params:acme:error:unauthorized: 404 for token" in section
    assert "2 failed renewals" in section
    # Most urgent first: the expired one, then the one with 20 days left, then the never-issued one.
    positions = [section.index(name) for name in ("expired.example.com", "renewal.example.com", "never.example.com")]
    assert positions == sorted(positions)
    assert "valid.example.com" not in section and "expiring.example.com" not in section
    assert reverse("ui:certificate-detail", args=[order.certificate_id]) in html


def test_no_failure_section_when_nothing_fails(alice_client, account):
    make_certificate(account, "valid.example.com", days_left=60)
    html = page_text(alice_client.get(reverse("ui:dashboard")))
    assert 'id="failures"' not in html and shown_counts(html)["failing"] == 0


def test_recent_orders_show_the_last_ten_newest_first_with_their_status(alice_client, account, bob):
    certificate = make_certificate(account, "orders.example.com", days_left=60)
    for _ in range(11):
        Order.objects.create(owner=account.owner, certificate=certificate, status=Order.Status.VALID)
    failed = Order.objects.create(owner=account.owner, certificate=certificate, status=Order.Status.INVALID,
                                  is_renewal=True)
    running = make_certificate(account, "running.example.com")
    Order.objects.create(owner=account.owner, certificate=running, status=Order.Status.VALIDATING)
    bobs = make_certificate(make_account(bob), "bob.example.com")
    Order.objects.create(owner=bob, certificate=bobs, status=Order.Status.VALID)

    html = page_text(alice_client.get(reverse("ui:dashboard")))
    activity = re.search(r'<ul class="plain activity">.*?</ul>', html, re.S).group(0)
    items = re.findall(r'<li class="activity__item">(.*?)</li>', activity, re.S)
    assert len(items) == 10
    assert "running.example.com" in items[0] and "CA is validating" in items[0]
    assert "badge--invalid" in items[1] and "Failed" in items[1] and "Renewal" in items[1]
    assert all("orders.example.com" in item for item in items[1:])
    assert "bob.example.com" not in html
    assert failed.created_at.strftime("%Y-%m-%d %H:%M") in items[1]


def test_the_dashboard_runs_the_same_queries_for_5_and_500_certificates(alice_client, alice, account, bob):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            html = page_text(alice_client.get(reverse("ui:dashboard")))
        return len(captured), shown_counts(html)

    for certificate in make_mix(account).values():
        Order.objects.create(owner=alice, certificate=certificate, status=Order.Status.VALID)
    few, few_counts = queries()

    bobs = make_account(bob)
    for number in range(495):
        certificate = make_certificate(account, days_left=number % 100 - 5, renewal_failures=number % 3 == 0)
        Order.objects.create(owner=alice, certificate=certificate, status=Order.Status.INVALID)
        make_certificate(bobs, days_left=30)
    assert Certificate.objects.filter(owner=alice).count() == 500
    many, many_counts = queries()
    assert many == few
    assert sum(many_counts.values()) > 10 * sum(few_counts.values())  # the counts did grow


def test_sites_nginx_rejected_have_a_count_that_lists_them(alice_client, alice, bob, settings,
                                                           tmp_path, queued):
    settings.ALLOWED_ROOTS = [tmp_path / "www"]
    made = {}
    owners = {"ok.example.com": alice, "broken.example.com": alice, "bob.example.com": bob}
    for name, owner in owners.items():
        root = str(tmp_path / "www" / name)
        made[name] = sites.save_site(Site(owner=owner, domains=[name], root=root))
    Site.objects.filter(pk__in=[made["broken.example.com"].pk, made["bob.example.com"].pk]).update(
        config_status=Site.ConfigStatus.FAILED, config_error="[emerg] unknown directive")
    html = page_text(alice_client.get(reverse("ui:dashboard")))
    assert shown_counts(html)["rejected_sites"] == 1  # bob's is not alice's business
    link = f'{reverse("ui:site-list")}?config=failed'
    assert f'href="{link}"' in html
    listed = page_text(alice_client.get(link))
    assert set(re.findall(r"\b[\w-]+\.example\.com\b", listed)) == {"broken.example.com"}


# --- keyboard: a skip link first, forms that take the keyboard


FOCUSABLE = re.compile(r'<(?:a\s[^>]*href|button|select|textarea|summary'
                       r'|input(?![^>]*type="hidden"))[^>]*>')


def test_a_skip_link_to_the_page_is_the_first_thing_tab_reaches(alice_client, client):
    pages = (alice_client.get(reverse("ui:site-list")), client.get(reverse("login")))
    for html in map(page_text, pages):
        body = html.split("<body", 1)[1]
        first = FOCUSABLE.search(body).group(0)
        assert first == '<a class="skip-link" href="#content">'
        assert re.search(r'<main [^>]*id="content"', body)
    zh = page_text(alice_client.get(reverse("ui:dashboard"),
                                    headers={"accept-language": "zh-hans"}))
    assert '<a class="skip-link" href="#content">跳到正文</a>' in zh


def test_forms_ask_for_the_keyboard_through_a_script_file_the_policy_allows(alice_client, client):
    pages = (alice_client.get(reverse("ui:site-add")), client.get(reverse("login")))
    for html in map(page_text, pages):
        assert re.search(r"<form data-focus-first [^>]*method=\"post\"", html)
        script = re.search(r'<script src="([^"]*focus[^"]*\.js)" defer></script>', html).group(1)
        assert "<script>" not in html  # nothing inline: the CSP allows only files
    assert "script-src 'self'" in client.get(reverse("login"))["Content-Security-Policy"]
    source = Path(settings.BASE_DIR) / "static" / script.removeprefix(settings.STATIC_URL)
    assert "focus()" in source.read_text()
