"""An upstream host name nginx is given is resolved per request (a `resolver` and a variable in
proxy_pass), so `nginx -t` and reloads never depend on it; IP addresses and names of the hosts
file stay in proxy_pass as typed. The site page says when the name does not resolve.

The real nginx and a real DNS server: tests/e2e/test_upstream_names.py."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from panel.deployment.nginx import upstream_names
from panel.deployment.nginx.render import Layout, UnsafeValue, render_site
from panel.deployment.nginx.upstream_names import NameResolution
from panel.models import Site

RESOLUTION = NameResolution(resolvers=("127.0.0.53", "[2001:db8::53]:5353"), ipv6=False,
                            hosts_file_names=frozenset({"localhost", "backend.lan"}))


def layout(tmp_path, resolution=RESOLUTION):
    return Layout(vhost_dir=tmp_path / "sites", challenge_dir=tmp_path / "challenges", http_port=80, https_port=443,
                  upstream_names=resolution)


def proxy_site(upstream):
    return Site(pk=3, owner=get_user_model()(username="root", is_superuser=True), domains=["a.example.com"],
                proxy_pass=upstream)


def location_lines(config):
    """The lines of the first `location / {` block that proxies."""
    lines = [line.strip() for line in config.splitlines()]
    start = next(i for i, line in enumerate(lines) if line == "location / {" and "proxy_http_version 1.1;" in
                 lines[i:i + 12])
    return [line for line in lines[start + 1:lines.index("}", start)] if line and not line.startswith("#")]


def test_a_host_name_is_resolved_per_request_by_the_configured_resolvers(tmp_path):
    config = render_site(proxy_site("http://app.example.net:8080"), layout(tmp_path))
    assert location_lines(config)[:4] == [
        "resolver 127.0.0.53 [2001:db8::53]:5353 valid=30s ipv6=off;",
        "resolver_timeout 5s;",
        "set $certpanel_upstream http://app.example.net:8080;",
        "proxy_pass $certpanel_upstream;",
    ]
    assert "proxy_pass http://app.example.net" not in config


def test_ipv6_answers_are_asked_for_where_the_host_reaches_ipv6(tmp_path):
    with_ipv6 = NameResolution(resolvers=("192.0.2.53",), ipv6=True)
    config = render_site(proxy_site("https://app.example.net"), layout(tmp_path, with_ipv6))
    assert location_lines(config)[:3] == ["resolver 192.0.2.53 valid=30s ipv6=on;", "resolver_timeout 5s;",
                                          "set $certpanel_upstream https://app.example.net;"]


@pytest.mark.parametrize("upstream", ["http://127.0.0.1:3000", "http://[::1]:3000/api/", "http://localhost:3000",
                                      "http://backend.lan:81", "http://app.example.net/a%20b/"])
def test_addresses_hosts_file_names_and_escaped_paths_stay_in_proxy_pass_as_typed(tmp_path, upstream):
    config = render_site(proxy_site(upstream), layout(tmp_path))
    assert location_lines(config)[0] == f"proxy_pass {upstream};"
    assert "resolver" not in config and "$certpanel_upstream" not in config


def test_a_path_takes_the_place_of_the_leading_slash_as_proxy_pass_with_the_path_did(tmp_path):
    config = render_site(proxy_site("http://app.example.net:8080/base/"), layout(tmp_path))
    assert location_lines(config)[2:5] == ["set $certpanel_upstream http://app.example.net:8080;",
                                           "rewrite (?s)^/(.*)$ /base/$1 break;",
                                           "proxy_pass $certpanel_upstream;"]


def test_a_layout_without_name_resolution_renders_names_as_before(tmp_path):
    config = render_site(proxy_site("http://app.example.net:8080"), layout(tmp_path, None))
    assert location_lines(config)[0] == "proxy_pass http://app.example.net:8080;" and "resolver" not in config


def test_the_pinned_address_of_a_users_upstream_needs_no_resolver(tmp_path):
    site = proxy_site("http://app.example.net:8080/api")
    config = render_site(site, layout(tmp_path), upstream="http://93.184.216.34:8080/api")
    assert location_lines(config)[0] == "proxy_pass http://93.184.216.34:8080/api;" and "resolver" not in config


def test_a_resolver_nginx_must_not_be_given_stops_the_render(tmp_path):
    bad = NameResolution(resolvers=("192.0.2.53;include/etc/passwd",), ipv6=False)
    with pytest.raises(UnsafeValue) as refused:
        render_site(proxy_site("http://app.example.net"), layout(tmp_path, bad))
    assert refused.value.field == "resolver"


def test_resolvers_come_from_the_setting_in_nginxs_spelling(settings):
    settings.NGINX_RESOLVERS = ["192.0.2.53", "192.0.2.54:5353", "2001:db8::53", "[2001:db8::54]:5353"]
    assert upstream_names.current_resolution().resolvers == (
        "192.0.2.53", "192.0.2.54:5353", "[2001:db8::53]", "[2001:db8::54]:5353")


def test_by_default_the_nameservers_of_resolv_conf(settings, tmp_path, monkeypatch):
    settings.NGINX_RESOLVERS = []
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text("# generated\nsearch example.net\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\n"
                           "nameserver 2001:db8::1\nnameserver not-an-address\noptions edns0\n")
    monkeypatch.setattr(upstream_names, "RESOLV_CONF", resolv_conf)
    assert upstream_names.current_resolution().resolvers == ("10.0.0.2", "[2001:db8::1]")
    resolv_conf.write_text("search example.net\n")  # none: the C library asks the server on this host
    assert upstream_names.current_resolution().resolvers == ("127.0.0.1",)


def test_names_of_the_hosts_file_are_known(tmp_path, monkeypatch):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n# 10.0.0.9 old.lan\n10.0.0.7 Backend.lan backend # the app\n")
    monkeypatch.setattr(upstream_names, "HOSTS_FILE", hosts)
    assert upstream_names.current_resolution().hosts_file_names == {"localhost", "backend.lan", "backend"}


@pytest.mark.django_db
def test_the_site_page_says_when_the_upstream_name_does_not_resolve(client, monkeypatch):
    admin = get_user_model().objects.create(username="root", is_superuser=True)
    site = Site.objects.create(owner=admin, domains=["a.example.com"], proxy_pass="http://app.example.net:8080",
                               config_status=Site.ConfigStatus.APPLIED)
    answers = {"app.example.net": False}
    monkeypatch.setattr(upstream_names, "_resolves", lambda host, resolution: answers[host])
    client.force_login(admin)
    page = client.get(reverse("ui:site-detail", args=[site.pk]), headers={"accept-language": "zh-hans"})
    assert "上游主机名“app.example.net”无法解析" in page.content.decode()
    status = client.get(reverse("ui:site-config-status", args=[site.pk]))
    assert "The upstream host name “app.example.net” does not resolve" in status.content.decode()
    answers["app.example.net"] = True
    assert "does not resolve" not in client.get(reverse("ui:site-detail", args=[site.pk])).content.decode()


@pytest.mark.django_db
def test_a_users_upstream_is_not_looked_up_for_the_page(monkeypatch):
    user = get_user_model().objects.create(username="o")
    site = Site(owner=user, domains=["a.example.com"], proxy_pass="http://app.example.net:8080")
    monkeypatch.setattr(upstream_names, "_resolves", lambda host, resolution: pytest.fail("looked up"))
    assert upstream_names.unresolved_upstream_host(site) == ""
