"""The Simplified Chinese UI: a complete catalogue, sound placeholders, pages without English
labels, and order log lines in the reader's language.

The catalogue is checked against a fresh extraction (makemessages on a copy of the tree),
so a string added anywhere without its translation fails here, named.
"""

import ast
import collections
import datetime
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from certs import cas, orders
from certs.dns import registry
from certs.models import (AcmeAccount, Authorization, Certificate, CertificateVersion, Challenge, DnsCredential, Order,
                          OrderLogEntry)
from panel.hosting import sites
from panel.models import Site

ROOT = Path(settings.BASE_DIR)
CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
# The documented command (README, "Languages"), minus -l: the copy has only what it extracts.
MAKEMESSAGES_IGNORES = ["-i", ".venv", "-i", "data", "-i", "tests", "-i", "bench"]
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "data", "tests", "bench", "test-artifacts", ".pytest_cache",
                                    "__pycache__", "*.mo", ".env")

# --- the catalogue


PoEntry = collections.namedtuple("PoEntry", "msgctxt msgid msgid_plural msgstrs flags")


def parse_po(text):
    """The live entries of a .po file (obsolete #~ entries and the header left out)."""
    entries = []
    for block in text.split("\n\n"):
        fields, flags, current = {}, [], None
        for line in block.strip().splitlines():
            if line.startswith("#,"):
                flags += [flag.strip() for flag in line[2:].split(",")]
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                fields[current] += ast.literal_eval(line)
            else:
                current, _, value = line.partition(" ")
                fields[current] = ast.literal_eval(value)
        if fields.get("msgid"):
            msgstrs = [value for key, value in sorted(fields.items()) if key.startswith("msgstr")]
            entries.append(PoEntry(fields.get("msgctxt"), fields["msgid"], fields.get("msgid_plural"), msgstrs,
                                   flags))
    return entries


@pytest.fixture(scope="module")
def fresh_catalogues(tmp_path_factory):
    """The project's catalogues after makemessages on a copy of today's sources, both domains."""
    tree = tmp_path_factory.mktemp("tree") / "certpanel"
    shutil.copytree(ROOT, tree, ignore=NOT_SOURCE, symlinks=True)
    for domain in ("django", "djangojs"):
        subprocess.run([sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "-d", domain,
                        *MAKEMESSAGES_IGNORES], cwd=tree, check=True, capture_output=True, timeout=300)
    catalogues = sorted((tree / "locale" / "zh_Hans" / "LC_MESSAGES").glob("*.po"))
    assert catalogues, "makemessages wrote no catalogue"
    return {path.name: parse_po(path.read_text(encoding="utf-8")) for path in catalogues}


def describe(entry):
    return repr(entry.msgid) if entry.msgctxt is None else f"{entry.msgid!r} (context {entry.msgctxt!r})"


def test_every_message_of_the_sources_is_translated(fresh_catalogues):
    for name, entries in fresh_catalogues.items():
        missing = [describe(e) for e in entries if not all(e.msgstrs)]
        fuzzy = [describe(e) for e in entries if "fuzzy" in e.flags]
        assert not missing, f"{name}: {len(missing)} untranslated:\n" + "\n".join(missing)
        assert not fuzzy, f"{name}: {len(fuzzy)} fuzzy (check, then drop the flag):\n" + "\n".join(fuzzy)


def test_the_committed_catalogue_is_the_extracted_one(fresh_catalogues):
    # The .po in git holds every current message (nothing only in someone's working copy).
    committed = {(e.msgctxt, e.msgid) for e in parse_po(CATALOGUE.read_text(encoding="utf-8"))}
    extracted = {(e.msgctxt, e.msgid) for e in fresh_catalogues["django.po"]}
    assert not extracted - committed, sorted(extracted - committed)


# %(name)s, %s, %d, %.0f ...; {name}; HTML tags. A translation carries the same ones as its msgid.
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdifrx%]"
                         r"|\{\w*\}"
                         r"|</?(?:a|b|br|code|em|kbd|strong)\b[^>]*>")


def placeholders(text):
    return collections.Counter(PLACEHOLDER.findall(text))


def test_translations_keep_the_placeholders_and_markup_of_their_msgid():
    entries = parse_po(CATALOGUE.read_text(encoding="utf-8"))
    wrong = []
    for entry in entries:
        # zh has one plural form, used for every count: it follows the plural msgid.
        source = entry.msgid_plural or entry.msgid
        for msgstr in entry.msgstrs:
            if msgstr and placeholders(msgstr) != placeholders(source):
                wrong.append(f"{describe(entry)} -> {msgstr!r}")
    assert len(entries) > 400  # the real catalogue was read
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


def test_the_placeholder_check_catches_a_lost_or_renamed_placeholder():
    assert placeholders("网站 %(nme)s 已添加") != placeholders("Site %(name)s added")
    assert placeholders("服务商：%(label)s") != placeholders("Provider: <strong>%(label)s</strong>")
    assert placeholders("同时包含") != placeholders("Also {name}")


# --- pages in Chinese


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogue():
    # make test compiles too; this keeps `pytest tests/test_i18n.py` honest on its own.
    call_command("compilemessages", ignore_patterns=["*"], verbosity=0)


@pytest.fixture
def zh_client(alice_client):
    alice_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return alice_client


@pytest.fixture
def site(alice, settings, tmp_path):
    settings.ALLOWED_ROOTS = [tmp_path]
    return sites.save_site(Site(owner=alice, domains=["a.example.com", "www.a.example.com"], root=str(tmp_path / "a")))


@pytest.fixture
def account(alice):
    return AcmeAccount.objects.create(owner=alice, directory_url="https://ca.test/directory", account_key="unused",
                                      account_url="https://ca.test/acct/1", email="alice@example.com")


@pytest.fixture
def issued_certificate(site, account):
    """A certificate with a current version (in its 20th day of 90) and a finished order."""
    certificate = Certificate.objects.create(owner=site.owner, site=site, account=account, domains=site.domains)
    order = Order.objects.create(owner=site.owner, certificate=certificate, status=Order.Status.VALID)
    now = timezone.now()
    version = CertificateVersion.objects.create(
        certificate=certificate, order=order, cert_pem="-", chain_pem="-", private_key="-", serial="fa11ed5e7a1",
        issuer="CN=ca.test", not_before=now - datetime.timedelta(days=20),
        not_after=now + datetime.timedelta(days=70),
    )
    Certificate.objects.filter(pk=certificate.pk).update(current_version=version, status=Certificate.Status.VALID)
    return certificate


class VisibleText(HTMLParser):
    """What a reader sees or hears of a page: text outside <script>, <style>, <pre> and <code>
    (config and record values are content, not labels), and the labelling attributes."""

    SKIPPED = {"script", "style", "pre", "code"}
    LABELS = {"aria-label", "title", "placeholder", "alt", "data-copied", "data-copy-failed"}

    def __init__(self):
        super().__init__()
        self.skipping, self.texts = 0, []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.skipping += 1
        attrs = dict(attrs)
        self.texts += [value for name, value in attrs.items() if name in self.LABELS and value]
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.texts.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag in self.SKIPPED:
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping and data.strip():
            self.texts.append(data.strip())


# Kept in English by the Chinese panels too, or not labels at all: product and protocol names,
# the language switch's own "English", key types, the user's name.
NOT_ENGLISH_LABELS = {
    "CertPanel", "English", "ACME", "SSL", "DNS", "TXT", "CNAME", "HTTP", "HTTPS", "HSTS", "nginx", "TSIG", "EAB", "CA",
    "PEM", "PFX", "UTC", "EC", "RSA", "ID", "URL", "API", "CSR", "HMAC", "Apprise", "apprise", "alice",
}
# A domain, URL, e-mail, path or DNS label (_acme-challenge) is data; so is a word with a digit
# in it (a date, a number, a record value, HTTP-01) and a PEM armour line.
DATA = re.compile(r"\S*[./@:=_\d]\S*|-----[A-Z ]+-----")


def vendor_names():
    """CAs and DNS providers are named as their makers name them (most DNS labels come from dns-lexicon)."""
    with translation.override("zh-hans"):
        names = {str(cls.label) for cls in registry.all_providers().values()}
        names |= {str(preset.label) for preset in cas.PRESETS.values()}
    return sorted(names, key=len, reverse=True)


def english_words(texts):
    words = set()
    for text in texts:
        for name in vendor_names():
            text = text.replace(name, " ")
        words |= {w for w in re.findall(r"[A-Za-z]{2,}", DATA.sub(" ", text)) if w not in NOT_ENGLISH_LABELS}
    return words


def visible_text(response):
    assert response.status_code == 200
    parser = VisibleText()
    parser.feed(response.content.decode())
    return parser.texts


@pytest.fixture
def site_waiting_for_dns_records(alice, account, site):
    """A second site whose manual DNS-01 order waits for the user to add a TXT record."""
    waiting = sites.save_site(Site(owner=alice, domains=["b.example.com"], root=site.root.replace("/a", "/b")))
    certificate = Certificate.objects.create(owner=alice, site=waiting, account=account, challenge="dns-01-manual",
                                             domains=["*.b.example.com"])
    order = Order.objects.create(owner=alice, certificate=certificate, status=Order.Status.AWAITING_USER,
                                 propagation_deadline=timezone.now() + datetime.timedelta(minutes=5))
    authorization = Authorization.objects.create(order=order, url="https://ca.test/authz/1", identifier="b.example.com",
                                                 wildcard=True, expires_at=timezone.now() + datetime.timedelta(days=7))
    Challenge.objects.create(authorization=authorization, type="dns-01", url="https://ca.test/chall/1", token="t",
                             record_name="_acme-challenge.b.example.com", record_value="GmPq8xR2vLkT0wYc")
    order.log(gettext_noop("Add these TXT records (the order continues once they are visible): %(records)s"),
              records="_acme-challenge.b.example.com TXT GmPq8xR2vLkT0wYc")
    return waiting


def main_pages(site, certificate, credential, waiting_site):
    return {
        "dashboard": reverse("ui:dashboard"),
        "site list": reverse("ui:site-list"),
        "add site": reverse("ui:site-add"),
        "site": reverse("ui:site-detail", args=[site.pk]),
        "site waiting for DNS records": reverse("ui:site-detail", args=[waiting_site.pk]),
        "certificate list": reverse("ui:certificate-list"),
        "certificate": reverse("ui:certificate-detail", args=[certificate.pk]),
        "certificate history": reverse("ui:certificate-history", args=[certificate.pk]),
        "upload a certificate": reverse("ui:certificate-upload"),
        "renewals": reverse("ui:renewal-overview"),
        "ACME accounts": reverse("ui:account-list"),
        "add ACME account": reverse("ui:account-add"),
        "DNS credentials": reverse("ui:dns-credential-list"),
        "add DNS credentials": reverse("ui:dns-credential-add"),
        "DNS credential": reverse("ui:dns-credential-detail", args=[credential.pk]),
        "notifications": reverse("ui:notification-list"),
        "add notification channel": reverse("ui:notification-add"),
    }


@pytest.fixture
def credential(alice):
    fields = {"server": "192.0.2.53", "zone": "example.com", "tsig_key_name": "k", "tsig_secret": "c2VjcmV0"}
    return DnsCredential.objects.create(owner=alice, provider="rfc2136", name="ns1.example.com",
                                        credentials=json.dumps(fields))


NAV_IN_CHINESE = ["概览", "网站", "证书", "续签", "DNS 账户", "ACME 账户", "通知", "退出登录"]


def test_main_pages_in_chinese_have_chinese_labels_and_no_english_ones(zh_client, issued_certificate, credential,
                                                                       site_waiting_for_dns_records, queued):
    pages = main_pages(issued_certificate.site, issued_certificate, credential, site_waiting_for_dns_records)
    for name, url in pages.items():
        texts = visible_text(zh_client.get(url))
        if name != "certificate history":  # a fragment, without the frame
            missing = [label for label in NAV_IN_CHINESE if label not in texts]
            assert not missing, f"{name} ({url}): no {missing}"
        assert not english_words(texts), f"{name} ({url}) shows English: {sorted(english_words(texts))}"


def test_the_same_pages_in_english_are_caught_by_the_check(alice_client, issued_certificate, credential, queued):
    # Without the cookie: proves the check above would see English labels.
    texts = visible_text(alice_client.get(reverse("ui:site-detail", args=[issued_certificate.site.pk])))
    assert {"Sites", "Certificates", "Renew"} <= english_words(texts)


def test_set_language_switches_the_site_page_to_chinese(alice_client, site):
    response = alice_client.post(reverse("set_language"), {"language": "zh-hans", "next": f"/sites/{site.pk}/"},
                                 follow=True)
    texts = visible_text(response)
    assert "申请证书" in texts and "Issue a certificate" not in texts


def test_accept_language_picks_chinese(alice_client, site):
    texts = visible_text(alice_client.get(reverse("ui:site-list"), headers={"accept-language": "zh-CN,zh;q=0.9"}))
    assert "添加网站" in texts


# --- order log lines


def log_lines(response):
    html = response.content.decode()
    return [re.sub(r"<[^>]+>", "", line).split(" ", 1)[1].strip()
            for line in re.findall(r'<li class="log__line[^"]*">(.*?)</li>', html, re.S)]


def test_an_order_log_line_recorded_in_english_shows_in_chinese_on_the_site_page(zh_client, site, account, queued):
    certificate = Certificate.objects.create(owner=site.owner, site=site, account=account, domains=site.domains)
    order = orders.start_order(certificate)  # logs "Order requested for ..." in the worker's language
    order.log(gettext_noop("Failed: %(error)s"), level="error", error="urn:ietf:params:acme:error:dns: NXDOMAIN")

    lines = log_lines(zh_client.get(reverse("ui:site-detail", args=[site.pk])))

    assert lines == ["已提交申请：a.example.com, www.a.example.com（EC P-256）",
                     "失败：urn:ietf:params:acme:error:dns: NXDOMAIN"]  # the CA's words, as it wrote them
    with translation.override("en"):
        english = [entry.text for entry in order.log_entries.all()]
    assert english[0] == "Order requested for a.example.com, www.a.example.com (EC P-256)"


def test_the_api_returns_order_log_lines_in_english_whatever_the_language(zh_client, site, account, queued):
    certificate = Certificate.objects.create(owner=site.owner, site=site, account=account, domains=site.domains)
    orders.start_order(certificate)
    body = zh_client.get(f"/api/v1/certificates/{certificate.pk}/", headers={"accept-language": "zh-hans"}).json()
    assert body["order"]["log"][0].endswith(" Order requested for a.example.com, www.a.example.com (EC P-256)")


def test_log_lines_stored_before_translation_show_their_text(zh_client, site, account):
    certificate = Certificate.objects.create(owner=site.owner, site=site, account=account, domains=site.domains)
    order = Order.objects.create(owner=site.owner, certificate=certificate)
    OrderLogEntry.objects.create(order=order, message="a.example.com: answered http-01 (100% sure)", params=None)
    lines = log_lines(zh_client.get(reverse("ui:site-detail", args=[site.pk])))
    assert lines == ["a.example.com: answered http-01 (100% sure)"]


# --- password validation


def error_texts(response):
    html = response.content.decode()
    lists = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S)
    return [re.sub(r"<[^>]+>", "", item).strip() for item in lists]


def test_password_messages_on_add_user_and_change_password_are_chinese(admin_client, alice_client):
    # "1234" is too short, too common and all digits: Django has a message for each.
    chinese = {"accept-language": "zh-hans"}
    added = admin_client.post(reverse("ui:user-add"),
                              {"username": "carol", "password": "1234", "role": "user"},
                              headers=chinese)
    changed = alice_client.post(reverse("ui:password-change"), {"old_password": "pw-alice-123",
                                                                "new_password1": "1234",
                                                                "new_password2": "1234"},
                                headers=chinese)
    for page, response in (("添加用户", added), ("修改密码", changed)):
        errors = error_texts(response)
        assert any("至少需要 8 个字符" in error for error in errors), (page, errors)
        assert any("太常见" in error for error in errors), (page, errors)
        assert not english_words(errors), (page, errors)


# --- wording


def test_the_ca_list_uses_full_width_brackets_throughout_in_chinese(zh_client):
    html = zh_client.get(reverse("ui:account-add")).content.decode()
    select = re.search(r'<select name="ca".*?</select>', html, re.S).group(0)
    options = re.findall(r"<option [^>]*>([^<]*)</option>", select)
    assert "ZeroSSL（需要 EAB）" in options and "Google Trust Services（测试环境）（需要 EAB）" in options
    assert not [option for option in options if "(" in option or ")" in option]


def test_the_settings_name_login_security_not_an_action_in_progress(zh_client, alice):
    alice.is_superuser = alice.is_staff = True
    alice.save()
    html = zh_client.get(reverse("ui:settings")).content.decode()
    assert "<h2>登录安全</h2>" in html and "正在登录" not in html
