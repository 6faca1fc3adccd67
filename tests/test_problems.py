"""Failures in words a person can act on (certs.problems): the CA not reached and each ACME
problem type get a cause and what to check in the reader's language; the raw text stays in a
fold-out, never as the message."""

import re
import socket

import pytest
import requests
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import translation
from rest_framework.test import APIClient

from certs import orders, problems
from certs.acme import AcmeClient, AcmeError, generate_account_key
from certs.models import AcmeAccount, Order
from panel.deployment.nginx import apply
from panel.models import Site
from tests.test_nginx_apply import nginx  # noqa: F401 (a fixture)
from tests.test_orders import FakeCA, ca, order, run_to_end  # noqa: F401 (ca, order: fixtures)

CHINESE = re.compile(r"[\u4e00-\u9fff]")

# Every problem type the brief names, and the word its hint must contain in each language.
HINT_WORDS = {
    "unauthorized": ("refused", "拒绝"),
    "dns": ("DNS", "DNS"),
    "connection": ("connect", "连接"),
    "rateLimited": ("rate limit", "频率限制"),
    "caa": ("CAA", "CAA"),
    "badNonce": ("nonce", "nonce"),
    "malformed": ("malformed", "格式有误"),
    "rejectedIdentifier": ("will not issue", "不为"),
    "externalAccountRequired": ("External Account Binding", "外部账户绑定"),
    "tls": ("port 443", "443 端口"),
    "incorrectResponse": ("wrong answer", "不正确"),
    "serverInternal": ("internal error", "内部出错"),
    "accountDoesNotExist": ("register", "重新注册"),
    "orderNotReady": ("not ready", "尚未就绪"),
}


@pytest.mark.parametrize("problem", sorted(HINT_WORDS))
def test_each_problem_type_has_a_hint_in_english_and_chinese(problem):
    failure = problems.from_acme(AcmeError(f"{problem}: the CA's words", problem_type=problem),
                                 "https://ca.example/dir")
    english, chinese = HINT_WORDS[problem]
    with translation.override("en"):
        assert english in failure.hint
    with translation.override("zh-hans"):
        assert chinese in failure.hint and CHINESE.search(failure.text)
        assert "the CA's words" not in failure.text and failure.raw == f"{problem}: the CA's words"


def test_validation_hints_follow_the_challenge_method():
    dns = problems.not_validated("*.wild.example.com", "unauthorized",
                                 "unauthorized: No TXT records found", "dns-01",
                                 record="_acme-challenge.wild.example.com")
    http = problems.not_validated("a.example.com", "connection",
                                  "connection: Timeout during connect", "http-01")
    with translation.override("zh-hans"):
        assert dns.lead == "*.wild.example.com：CA 未能验证此域名。"
        assert "未找到 TXT 记录" in dns.hint and "_acme-challenge.wild.example.com" in dns.hint
        assert "主机记录" in dns.hint
        assert "http://a.example.com/.well-known/acme-challenge/" in http.hint
        assert "80 端口" in http.hint
    with translation.override("en"):
        assert "TXT record was not found at the authoritative servers" in dns.hint
        assert "check port 80, the firewall and the DNS A/AAAA record" in http.hint


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_ca_that_cannot_be_reached_is_told_apart_from_one_that_refuses():
    port = closed_port()
    client = AcmeClient(f"https://127.0.0.1:{port}/dir", generate_account_key(), timeout=5)
    with pytest.raises(AcmeError) as refused:
        client.register()
    assert refused.value.cause == "connect"
    client = AcmeClient("https://ca.invalid/dir", generate_account_key(), timeout=5)
    with pytest.raises(AcmeError) as unresolved:
        client.register()
    assert unresolved.value.cause == "resolve"
    with translation.override("zh-hans"):
        assert problems.from_acme(unresolved.value, "https://ca.invalid/dir").lead.startswith(
            "无法解析 CA 的域名 ca.invalid")


def test_a_timeout_is_told_as_one(monkeypatch):
    def slow(*args, **kwargs):
        raise requests.exceptions.ConnectTimeout("timed out")

    monkeypatch.setattr(requests.Session, "request", slow)
    with pytest.raises(AcmeError) as waited:
        AcmeClient("https://ca.example/dir", generate_account_key()).register()
    assert waited.value.cause == "timeout"


def outside_fold_outs(html):
    return re.sub(r"<details\b.*?</details>", "", html, flags=re.S)


def test_registering_at_an_unreachable_ca_says_what_to_check_in_chinese(admin_client):
    url = f"https://127.0.0.1:{closed_port()}/directory"
    response = admin_client.post(reverse("ui:account-add"), {"ca": "custom", "directory_url": url},
                                 headers={"accept-language": "zh-hans"})
    html = response.content.decode()
    assert response.status_code == 200 and not AcmeAccount.objects.exists()
    assert "账户未注册。无法连接到 CA：请检查服务器能否访问 127.0.0.1" in html
    assert "HTTPSConnectionPool" in html  # kept, for whoever wants it ...
    assert "HTTPSConnectionPool" not in outside_fold_outs(html)  # ... but never as the message
    assert "cannot reach the CA" not in outside_fold_outs(html)


def test_the_api_gives_the_cause_as_a_code_and_the_message_translated(admin_user):
    api = APIClient()
    api.force_authenticate(admin_user)
    url = f"https://127.0.0.1:{closed_port()}/directory"
    response = api.post("/api/v1/acme-accounts/", {"directory_url": url}, format="json",
                        headers={"accept-language": "zh-hans"})
    body = response.json()
    assert response.status_code == 400
    assert body["ca_error"]["code"] == "connect"
    assert "HTTPSConnectionPool" in body["ca_error"]["raw"]
    assert body["directory_url"][0].startswith("账户未注册。无法连接到 CA")
    assert "HTTPSConnectionPool" not in body["directory_url"][0]


class RefusingCA(FakeCA):
    """The CA reads the HTTP-01 token and finds the wrong answer."""

    RAW = ("unauthorized: Invalid response from "
           "http://a.example.com/.well-known/acme-challenge/tok-1: 404")

    def answer_challenge(self, url, challenge_type):
        self.authz_status = "invalid"

    def fetch_authorization(self, url):
        state, retry_after = super().fetch_authorization(url)
        if state.status == "invalid":
            state.error, state.error_type = self.RAW, "unauthorized"
        return state, retry_after


def test_a_failed_order_is_shown_in_the_readers_language(ca, order, monkeypatch, client):
    refusing = RefusingCA()
    refusing.authz_status = "pending"
    monkeypatch.setattr("certs.orders.accounts.client_for", lambda account: refusing)
    order = run_to_end(order)
    assert order.status == Order.Status.INVALID
    assert order.error.endswith(RefusingCA.RAW)  # the English text, for scripts and mail
    client.force_login(get_user_model().objects.get(username="u"))
    page = reverse("ui:certificate-detail", args=[order.certificate_id])

    dashboard = reverse("ui:dashboard")
    chinese, english, dashboard = (
        client.get(url, headers={"accept-language": language}).content.decode()
        for url, language in ((page, "zh-hans"), (page, "en"), (dashboard, "zh-hans")))

    for html in (chinese, dashboard):
        shown = outside_fold_outs(html)
        assert "a.example.com：CA 未能验证此域名。" in shown and "没有读到预期的内容" in shown
        assert "Invalid response" not in shown and "Invalid response" in html
    assert "a.example.com: the CA could not validate this name." in outside_fold_outs(english)
    assert "did not read the expected answer" in english
    with translation.override("zh-hans"):  # the log line too, the CA's words in its fold-out
        assert "失败：a.example.com：CA 未能验证此域名。" in [entry.text for entry in order.log_entries.all()]
    assert "失败：a.example.com：CA 未能验证此域名。" in re.sub(r"<[^>]+>", "", outside_fold_outs(chinese))
    assert order.log_entries.last().raw == RefusingCA.RAW


def test_an_unreachable_ca_is_said_in_the_readers_words_in_the_order_log(ca, order):
    ca.fail_next = AcmeError(
        "cannot reach the CA: HTTPSConnectionPool(host='ca.test', port=443): Max retries",
        problem_type="connection", transient=True, cause="connect")
    orders.run_step(order)
    entry = order.log_entries.last()
    with translation.override("zh-hans"):
        assert entry.text.endswith("秒后重试：无法连接到 CA：请检查服务器能否访问 ca.test（防火墙、出站代理），"
                                   "或改用其他 CA（如 ZeroSSL）或代理。")
    assert "HTTPSConnectionPool" in entry.raw


def test_a_rate_limit_being_waited_out_says_so_in_the_readers_words(ca, order):
    ca.fail_next = AcmeError("rateLimited: too many new orders recently",
                             problem_type="rateLimited", transient=True, retry_after=60)
    orders.run_step(order)
    entry = order.log_entries.last()
    with translation.override("zh-hans"):
        assert entry.text.endswith("秒后重试：已达到 CA 的频率限制：请等到 CA 给出的时间后再试；"
                                   "测试请使用测试环境 CA。")
    assert entry.raw == "rateLimited: too many new orders recently"


def test_a_failure_stored_before_message_ids_shows_its_text(ca, order, client):
    Order.objects.filter(pk=order.pk).update(status=Order.Status.INVALID,
                                             error="a.example.com: old words")
    client.force_login(get_user_model().objects.get(username="u"))
    html = client.get(reverse("ui:certificate-detail", args=[order.certificate_id]),
                      headers={"accept-language": "zh-hans"}).content.decode()
    assert "a.example.com: old words" in html


def site_page_in_chinese(client, site):
    response = client.get(reverse("ui:site-detail", args=[site.pk]),
                          headers={"accept-language": "zh-hans"})
    return response.content.decode()


@pytest.mark.django_db
def test_a_config_nginx_rejects_reads_in_the_readers_language_nginxs_words_folded(nginx, client):
    admin = get_user_model().objects.create(username="root", is_superuser=True)
    site = Site.objects.create(owner=admin, domains=["c.example.com"],
                               proxy_pass="http://127.0.0.1:1")
    typo = apply.layout().custom_dir(site) / "typo.conf"
    typo.parent.mkdir(parents=True)
    typo.write_text("proxy_buferring off;\n")  # the owner's own addition: `nginx -t` fails
    assert apply.apply_site_config(site).ok is False
    client.force_login(admin)
    html = site_page_in_chinese(client, site)
    assert "nginx 拒绝了此网站的配置，仍在使用之前的配置。" in outside_fold_outs(html)
    assert "[emerg]" in html and "[emerg]" not in outside_fold_outs(html)


@pytest.mark.django_db
def test_an_upstream_the_outbound_policy_refuses_is_not_blamed_on_nginx(nginx, client):
    user = get_user_model().objects.create(username="o")
    site = Site.objects.create(owner=user, domains=["d.example.com"],
                               proxy_pass="http://127.0.0.1:9")
    assert apply.apply_site_config(site).ok is False
    client.force_login(user)
    shown = outside_fold_outs(site_page_in_chinese(client, site))
    assert "服务器的出站策略拒绝了此网站的上游地址" in shown and "nginx 拒绝了此网站的配置" not in shown
