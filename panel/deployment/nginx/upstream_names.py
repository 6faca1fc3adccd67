"""Upstream host names that nginx resolves per request instead of when it loads its configuration.

A name written in `proxy_pass` is resolved by every `nginx -t` and reload: once it stops
resolving, nginx refuses the whole configuration, and no site can be changed until someone fixes
that one. Given through a variable, nginx resolves it when a request comes, with the `resolver`
servers, so a name that stops resolving costs its own site's visitors a 502 and nothing else; the
site page says why (unresolved_upstream_host).

Only administrators' upstreams reach nginx by name: a user's is pinned to the address the
outbound policy vetted (apply.vetted_upstream).
"""

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from django.conf import settings

from panel.toolkit import access
from panel.toolkit.config import split_host_port

RESOLV_CONF = Path("/etc/resolv.conf")
HOSTS_FILE = Path("/etc/hosts")
# What the site page waits for nginx's resolvers at most.
CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class NameResolution:
    """How nginx resolves upstream names on this host, read when a config is rendered."""

    resolvers: tuple[str, ...]  # in nginx's spelling: 192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:53
    ipv6: bool  # ask for AAAA records too: this host has a route to IPv6 addresses
    # Names the hosts file gives (localhost...): nginx's resolver never reads that file, so these
    # stay resolved when nginx loads the configuration, as before. A local file does not stop
    # resolving by itself.
    hosts_file_names: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RuntimeUpstream:
    """An upstream nginx resolves per request: `origin` (scheme://host[:port]) goes into a
    variable, and the URL's `path`, if any, is put in front of each request's URI by a rewrite
    (a proxy_pass with a variable would send the path alone instead)."""

    origin: str
    path: str
    resolution: NameResolution


def nginx_address(server: str) -> str:
    """A DNS server ("2001:db8::53", "[2001:db8::53]:5353", "192.0.2.53:5353") as nginx's
    `resolver` takes it: IPv6 in brackets."""
    host, port = split_host_port(server)
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


def system_nameservers() -> tuple[str, ...]:
    """The `nameserver` addresses of resolv.conf, as the C library reads them: what is not an
    IP address is skipped; none at all means the server on this host (resolv.conf(5))."""
    servers = []
    try:
        lines = RESOLV_CONF.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or fields[0] != "nameserver":
            continue
        if "%" in fields[1]:
            continue  # a zone index (fe80::1%eth0): nginx's resolver cannot take one
        try:
            servers.append(str(ipaddress.ip_address(fields[1])))
        except ValueError:
            continue
    return tuple(servers) or ("127.0.0.1",)


def hosts_file_names() -> frozenset[str]:
    names = {"localhost"}
    try:
        lines = HOSTS_FILE.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split("#", 1)[0].split()
        names.update(name.lower().rstrip(".") for name in fields[1:])
    return frozenset(names)


def ipv6_routable() -> bool:
    """Has this host a route to IPv6 internet addresses? Connecting a UDP socket sends nothing;
    it only looks the route up. Without one, AAAA answers would only add failed connections."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.connect(("2001:db8::1", 53))
    except OSError:
        return False
    return True


def current_resolution() -> NameResolution:
    """NGINX_RESOLVERS, or else the nameservers of /etc/resolv.conf as they are now."""
    servers = settings.NGINX_RESOLVERS or system_nameservers()
    return NameResolution(resolvers=tuple(nginx_address(server) for server in servers), ipv6=ipv6_routable(),
                          hosts_file_names=hosts_file_names())


def runtime_upstream(upstream: str, resolution: NameResolution | None) -> RuntimeUpstream | None:
    """How nginx reaches `upstream` (a URL validation.validate_upstream accepted) when it is to
    resolve its host per request; None when the URL stays in proxy_pass as it is: an IP address
    (nothing to resolve), a name of the hosts file, no `resolution` given (a Layout made without
    one), or a path nginx could not be given unchanged through a rewrite: nginx escapes the URI
    a rewrite makes, so a path with a %-escape or a non-ASCII character would reach the upstream
    escaped twice. Such paths are rare; they keep today's behaviour."""
    if not upstream or resolution is None:
        return None
    parts = urlsplit(upstream)
    host = (parts.hostname or "").rstrip(".")
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if host in resolution.hosts_file_names:
        return None
    origin = f"{parts.scheme}://{parts.netloc}"
    if origin + parts.path != upstream or "%" in parts.path or not parts.path.isascii():
        return None
    return RuntimeUpstream(origin=origin, path=parts.path, resolution=resolution)


def unresolved_upstream_host(site, resolution: NameResolution | None = None) -> str:
    """The host name of `site`'s upstream if nginx resolves it per request and nginx's resolvers
    have no address for it now (no such name, no record, or no answer), else "".

    A user's upstream is given to nginx as its vetted address and never resolved by nginx; a
    name that stops resolving fails that site's next apply instead (apply.vetted_upstream)."""
    if not site.proxy_pass or not access.is_admin(site.owner):
        return ""
    resolution = resolution or current_resolution()
    if runtime_upstream(site.proxy_pass, resolution) is None:
        return ""
    host = urlsplit(site.proxy_pass).hostname.rstrip(".")
    return "" if _resolves(host, resolution) else host


def _resolves(host: str, resolution: NameResolution) -> bool:
    """Asked as nginx asks: of its resolvers, the name as it is (no search domains), A and, with
    ipv6, AAAA records."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [_dns_server(address) for address in resolution.resolvers]
    resolver.lifetime = CHECK_TIMEOUT_SECONDS
    name = dns.name.from_text(host)
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) if resolution.ipv6 else (dns.rdatatype.A,):
        try:
            resolver.resolve(name, rdtype, search=False)
            return True
        except dns.resolver.NoAnswer:
            continue
        except dns.exception.DNSException:  # NXDOMAIN, every server failing or silent
            return False
    return False


def _dns_server(address: str):
    host, port = split_host_port(address)
    return dns.nameserver.Do53Nameserver(host, int(port) if port else 53)
