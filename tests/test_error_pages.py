"""The error pages: in the reader's language and in the panel's frame; the 500 and 400 pages
render with no request and no database (either may be what failed)."""

import pytest
from django.core.exceptions import SuspiciousOperation
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation
from django.views import defaults

from panel.hosting import sites
from panel.models import Site


def test_a_missing_page_is_chinese_for_a_chinese_reader_and_inside_the_frame(alice_client):
    response = alice_client.get("/no/such/page/", headers={"accept-language": "zh-hans"})
    html = response.content.decode()
    assert response.status_code == 404
    assert "<h1>页面不存在</h1>" in html and "Not Found" not in html
    assert '<a class="skip-link" href="#content">跳到正文</a>' in html
    assert f'href="{reverse("ui:site-list")}"' in html  # the navigation of a logged-in user
    assert '<form class="lang-switch"' in html


def test_someone_elses_object_is_the_same_translated_404(bob_client, alice, settings, tmp_path,
                                                         queued):
    settings.ALLOWED_ROOTS = [tmp_path]
    site = sites.save_site(Site(owner=alice, domains=["a.example.com"], root=str(tmp_path / "a")))
    response = bob_client.get(reverse("ui:site-detail", args=[site.pk]),
                              headers={"accept-language": "zh-hans"})
    assert response.status_code == 404 and "<h1>页面不存在</h1>" in response.content.decode()


def test_a_page_for_administrators_is_a_translated_403_for_a_user(alice_client):
    response = alice_client.get(reverse("ui:settings"), headers={"accept-language": "zh-hans"})
    assert response.status_code == 403
    assert "<h1>无权访问</h1>" in response.content.decode()


def test_the_api_still_answers_json_for_a_missing_path(alice_client):
    response = alice_client.get("/api/v1/sites/abc/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("view, args, status, heading", [
    (defaults.server_error, (), 500, "服务器错误"),
    (defaults.bad_request, (SuspiciousOperation("x"),), 400, "请求无效"),
])
def test_the_500_and_400_pages_need_no_database_and_no_request(view, args, status, heading):
    # No db fixture: any query raises here. Django renders these two with no request at all.
    with translation.override("zh-hans"):
        response = view(RequestFactory().get("/"), *args)
    html = response.content.decode()
    assert response.status_code == status
    assert f"<h1>{heading}</h1>" in html and 'class="topbar"' in html
    assert "lang-switch" not in html  # no CSRF token to post it with
