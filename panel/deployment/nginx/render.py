"""Site -> nginx config text. Pure: no I/O, no database writes.

Uses its own template engine without HTML autoescaping. Every value rendered has
passed panel.toolkit.validation when it was stored, so nothing here needs quoting; yet the root
deploy worker renders what the database holds, which a compromised service-user process could
have written past that validation. So the values of the database are checked again here
(check_nginx_safe): none may end a directive or open a block, and a vhost with such a value is
never rendered (UnsafeValue).
"""

import getpass
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.template import Context, Engine

from panel.deployment.nginx.upstream_names import NameResolution, runtime_upstream
from panel.toolkit.config import LISTEN_FAMILIES

TEMPLATE_DIR = Path(settings.BASE_DIR) / "templates" / "nginx"


@lru_cache(maxsize=1)
def _engine():
    return Engine(dirs=[str(TEMPLATE_DIR)], autoescape=False)


def _render(template, **context):
    return _engine().get_template(template).render(Context(context, autoescape=False))


# Whitespace, what ends a directive or opens a block, quotes, escapes, comments, variables, control characters.
_NGINX_UNSAFE = re.compile(r"[\s;{}\"'\\#$\x00-\x1f\x7f-\x9f]")


class UnsafeValue(ValueError):
    """A stored value that must not reach nginx's configuration; `field` names the directive."""

    def __init__(self, field, value):
        super().__init__(f"the stored {field} value is invalid: {value!r} holds what nginx must not be given "
                         "(whitespace, ; { } quotes \\ # $ or control characters)")
        self.field, self.value = field, value


def check_nginx_safe(**values):
    """Raise UnsafeValue for the first value (keyword: the directive it fills) that is not text
    free of whitespace, ; { } quotes \\ # $ and control characters. Empty values pass."""
    for field, value in values.items():
        if value is None or value == "":
            continue
        if isinstance(value, Path):
            value = str(value)
        if not isinstance(value, str) or _NGINX_UNSAFE.search(value):
            raise UnsafeValue(field, value)


WILDCARD = {4: "0.0.0.0", 6: "::"}


def _listen_address(host, port):
    if host == WILDCARD[4]:
        return str(port)  # nginx's own spelling of every IPv4 address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Layout:
    """Where things live on the nginx host."""

    vhost_dir: Path
    challenge_dir: Path
    http_port: int
    https_port: int
    # Comma-separated addresses to listen on, exactly these; empty: every address of each of
    # listen_families (a key of LISTEN_FAMILIES).
    listen_address: str = ""
    listen_families: str = "both"
    http2_directive: bool = True  # nginx >= 1.25.1 spells it `http2 on;`
    # The certificates nginx serves: one file per HTTPS site (its key and full chain), read at
    # each handshake, so a renewal replaces the file and needs no reload.
    certificate_dir: Path = Path("/nonexistent")
    # The panel's default servers hold the one TLS context of every site (nginx makes no
    # context for a server block without a certificate: 10,000 sites cost no more memory or
    # reload time than one). Off when nginx's own default site keeps default_server
    # (CERTPANEL_KEEP_NGINX_CONFIG): then each site's server block holds its own.
    shared_tls: bool = True
    # How nginx resolves upstream host names per request; None: names stay in proxy_pass as
    # typed, resolved when nginx loads its configuration.
    upstream_names: NameResolution | None = None

    @property
    def snippets_dir(self):
        return self.vhost_dir / "snippets"

    @property
    def names_dir(self):
        """Each HTTPS site's names -> its certificate file: the map nginx picks the file from."""
        return self.vhost_dir / "tls-names"

    def names_file(self, site):
        return self.vhost_dir / self.names_file_name(site)

    @staticmethod
    def names_file_name(site):
        """Below vhost_dir: how nginx's errors name the file."""
        return f"tls-names/site-{site.pk}.map"

    def served_certificate(self, site):
        """The one file nginx reads the site's certificate and key from."""
        return self.certificate_dir / f"site-{site.pk}.pem"

    def https_ready(self, site):
        """Exists while the site's file holds its own certificate (not the fallback): its HTTP
        server redirects to HTTPS (force_https) only then."""
        return self.certificate_dir / f"site-{site.pk}.ready"

    @property
    def fallback_certificate(self):
        """Served for a name no site claims (a self-signed one the panel makes)."""
        return self.certificate_dir / "unknown-name.pem"

    def custom_dir(self, site):
        """Where hand-written additions to the site's server blocks go; never regenerated."""
        return self.vhost_dir / "custom" / f"site-{site.pk}"

    def applied_custom_dir(self, site):
        """The copy of custom_dir the vhost includes, taken when an apply of the site passes
        nginx -t: a bad hand edit never reaches the live config, so it cannot stop nginx from
        reloading for every other site."""
        return self.vhost_dir / "custom-applied" / f"site-{site.pk}"

    def listen_hosts(self) -> list[str]:
        """The addresses nginx listens on: 0.0.0.0 and :: stand for every IPv4 and IPv6 address."""
        if self.listen_address:
            return [host.strip().strip("[]") for host in self.listen_address.split(",") if host.strip()]
        return [WILDCARD[family] for family in LISTEN_FAMILIES[self.listen_families]]

    def listen_addresses(self, port) -> list[str]:
        """What `listen` takes for `port`, once per address: ["80", "[::]:80"], or
        ["127.0.0.1:8080", "[::1]:8080"]. Every server block listening on `port` needs each
        (with the same flags on each: ssl, default_server)."""
        return [_listen_address(host, port) for host in self.listen_hosts()]


@dataclass(frozen=True)
class CertificateFiles:
    fullchain: Path
    key: Path


def check_site_values(site, upstream=None, layout: Layout | None = None):
    """Raise UnsafeValue unless every value of `site` (and `upstream`, and its certificate's path
    in `layout`) a vhost holds is nginx-safe (check_nginx_safe)."""
    names = site.domains if isinstance(site.domains, list) and site.domains else [None]
    for name in names:
        if not isinstance(name, str) or not name:
            raise UnsafeValue("server_name", name)
        check_nginx_safe(server_name=name)
    check_nginx_safe(server_name=site.primary_domain)  # the vhost's first comment line (saved: domains[0])
    check_nginx_safe(proxy_pass=upstream or site.proxy_pass, root=site.root,
                     ssl_certificate=layout.served_certificate(site) if layout else "")


def render_site(site, layout: Layout, upstream=None) -> str:
    """The site's vhost: its HTTP and HTTPS server blocks (its certificate comes from the names
    map: render_names). `upstream`: what nginx proxies to, when not the site's proxy_pass as
    typed (a user's, pinned to its vetted address by apply.vetted_upstream). Raises UnsafeValue
    before rendering anything unsafe. The text does not depend on the site's certificate, nor
    on whether it has one: its first certificate, a renewal, leave it as it is."""
    check_site_values(site, upstream, layout)
    return _render(
        "vhost.conf",
        site=site,
        upstream=upstream or site.proxy_pass,
        runtime_upstream=_runtime_upstream(upstream or site.proxy_pass, layout),
        server_names=" ".join(site.domains),
        listen_http=layout.listen_addresses(layout.http_port),
        listen_https=layout.listen_addresses(layout.https_port),
        https_port_suffix="" if layout.https_port == 443 else f":{layout.https_port}",
        snippets_dir=layout.snippets_dir,
        custom_dir=layout.custom_dir(site),
        challenge_dir=layout.challenge_dir,
        applied_custom_dir=layout.applied_custom_dir(site),
        https_ready=layout.https_ready(site),
        shared_tls=layout.shared_tls,
        http2=site.http2,
        http2_directive=layout.http2_directive,
    )


def render_names(site, layout: Layout) -> str:
    """The site's lines in the names map: each of its names -> its certificate file."""
    check_site_values(site, layout=layout)
    return _render("site-names.map", site=site, certificate=layout.served_certificate(site))


def _runtime_upstream(upstream, layout: Layout):
    named = runtime_upstream(upstream, layout.upstream_names)
    if named:
        for address in named.resolution.resolvers:
            check_nginx_safe(resolver=address)
    return named


def render_snippets(layout: Layout) -> dict[str, str]:
    """Shared files every vhost includes, by path."""
    return {
        layout.snippets_dir / "acme-challenge.inc": _render("acme-challenge.inc", challenge_dir=layout.challenge_dir),
        layout.snippets_dir / "tls-intermediate.inc": _render("tls-intermediate.inc"),
        layout.vhost_dir / "000-certpanel-http.conf": _render("connection-upgrade.conf"),
        layout.vhost_dir / "000-certpanel-tls.conf": _render(
            "tls-names.conf", names_dir=layout.names_dir, fallback_certificate=layout.fallback_certificate),
    }


def shared_includes(layout: Layout) -> list[Path]:
    """The files of the vhost directory every vhost depends on (maps, the names map)."""
    return sorted(path for path in render_snippets(layout) if path.parent == layout.vhost_dir)


def render_system_include(layout: Layout, includes: list | None = None) -> str:
    """The file the system nginx's conf.d holds: the panel's vhosts (or `includes`), and (unless
    the administrator keeps nginx's own default site: not layout.shared_tls) the catch-all
    servers."""
    return _render(
        "system-include.conf",
        default_server=layout.shared_tls,
        includes=includes or [layout.vhost_dir / "*.conf"],
        listen_http=layout.listen_addresses(layout.http_port),
        listen_https=layout.listen_addresses(layout.https_port),
        snippets_dir=layout.snippets_dir,
        vhost_dir=layout.vhost_dir,
    )


MIME_TYPES = Path("/etc/nginx/mime.types")


def render_private_main(layout: Layout, prefix: Path, pid_file: Path, includes: list | None = None) -> str:
    """The private nginx's main config; with `includes`, those files in place of every vhost
    (a minimal configuration to test one site in)."""
    mime_types = MIME_TYPES
    return _render(
        "private-main.conf",
        includes=includes or [layout.vhost_dir / "*.conf"],
        # A private nginx started by root would drop to "nobody", who cannot read
        # the panel's files; run its workers as the panel's own user instead.
        user=getpass.getuser() if os.geteuid() == 0 else "",
        prefix=prefix,
        pid_file=pid_file,
        mime_types=mime_types if mime_types.is_file() else "",
        listen_http=layout.listen_addresses(layout.http_port),
        listen_https=layout.listen_addresses(layout.https_port),
        snippets_dir=layout.snippets_dir,
        vhost_dir=layout.vhost_dir,
    )


def render_minimal_system_main(layout: Layout, includes: list) -> str:
    """A main config for the system nginx holding only `includes`, to test one site in. Without
    the administrator's own http-level settings: what it rejects, the whole configuration
    decides (apply.test_site)."""
    return _render("minimal-system-main.conf", mime_types=MIME_TYPES if MIME_TYPES.is_file() else "",
                   system_include=render_system_include(layout, includes))
