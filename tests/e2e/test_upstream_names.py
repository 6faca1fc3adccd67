"""An administrator's upstream named by a host name, with a real nginx (private, in-process
applies) and a real BIND on loopback as nginx's resolver (CERTPANEL_NGINX_RESOLVERS): nginx
resolves the name per request, so once the name stops resolving every other site's change is
still applied and served, and the site's page says why it answers 502.

This machine's own resolver knows nothing of example.test: nginx must ask the BIND of the test."""

import socket

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from panel.deployment.nginx import apply
from panel.models import Site
from tests.support.listener import Listener
from tests.test_nginx_apply import fetch, make_site, nginx, serves, settled  # noqa: F401 (nginx: a fixture)

UPSTREAM = "app.example.test"


@pytest.fixture
def upstream():
    server = Listener(reply=b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\nConnection: close\r\n\r\nhello from upstream")
    yield server
    server.close()


@pytest.fixture
def admin(db):
    return get_user_model().objects.create(username="root", is_superuser=True)


def raw_get(settings, host, target):
    """The body nginx answers to `GET target` sent byte for byte (an HTTP client would tidy the path)."""
    with socket.create_connection(("127.0.0.1", settings.NGINX_HTTP_PORT), timeout=5) as connection:
        connection.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    return response.partition(b"\r\n\r\n")[2].decode()


def site_page(client, site):
    return client.get(reverse("ui:site-detail", args=[site.pk])).content.decode()


@pytest.mark.django_db
def test_an_upstream_name_that_stops_resolving_stops_no_other_sites_change(nginx, bind_server, upstream, admin,
                                                                           client, tmp_path):
    nginx.NGINX_RESOLVERS = [bind_server.server_address]
    bind_server.add_a(UPSTREAM)
    a = Site.objects.create(owner=admin, domains=["a.example.test"], proxy_pass=f"http://{UPSTREAM}:{upstream.port}")
    assert apply.apply_site_config(a).ok
    assert serves(nginx, "a.example.test", "hello from upstream")
    client.force_login(admin)
    assert "does not resolve" not in site_page(client, a)

    # The name is gone: its record and the zone's wildcard, which would answer for it too.
    bind_server.delete_records(UPSTREAM)
    bind_server.delete_records(f"*.{bind_server.zone}")
    assert bind_server.query(UPSTREAM) == []

    # Another site is added and served, and the site itself can still be changed.
    b = make_site(tmp_path, "b.example.test")
    assert apply.apply_site_config(b).ok
    assert serves(nginx, "b.example.test", "this is b.example.test")
    a.hsts = True
    a.save()
    assert apply.apply_site_config(a).ok
    a.refresh_from_db()
    assert a.config_status == Site.ConfigStatus.APPLIED and a.config_error == ""

    # Its page says why it fails ...
    assert f"The upstream host name “{UPSTREAM}” does not resolve" in site_page(client, a)
    assert "does not resolve" not in site_page(client, b)
    # ... as nginx finds when it asks again (a fresh worker after a reload, or once its answer's
    # 30 s are over): 502 for that site alone.
    assert settled(lambda: fetch(nginx, "a.example.test").status_code == 502, timeout=45)
    assert serves(nginx, "b.example.test", "this is b.example.test")
    assert apply.test_config()[0]


@pytest.mark.django_db
def test_a_named_upstream_with_a_path_gets_the_uris_proxy_pass_with_the_path_gave(nginx, bind_server, upstream,
                                                                                   admin):
    nginx.NGINX_RESOLVERS = [bind_server.server_address]
    bind_server.add_a(UPSTREAM)
    site = Site.objects.create(owner=admin, domains=["p.example.test"],
                               proxy_pass=f"http://{UPSTREAM}:{upstream.port}/base/")
    assert apply.apply_site_config(site).ok
    assert "$certpanel_upstream" in (nginx.NGINX_VHOST_DIR / site.config_name).read_text()
    assert serves(nginx, "p.example.test", "hello from upstream")
    # What nginx sent for `proxy_pass http://host:port/base/;`: the path in place of the leading
    # /, on the normalised URI (dot segments resolved, %2F decoded), the query as it came.
    sent = {"/": "/base/", "/x/y?q=1&r=%20": "/base/x/y?q=1&r=%20", "//x/../y": "/base/y",
            "/a%2Fb": "/base/a/b", "/a%20b": "/base/a%20b", "/a%0Ab": "/base/a%0Ab"}
    for path, expected in sent.items():
        upstream.request_lines.clear()
        assert raw_get(nginx, "p.example.test", path) == "hello from upstream"
        assert upstream.request_lines == [f"GET {expected} HTTP/1.1"], path
