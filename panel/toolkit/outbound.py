"""The outbound policy: where a connection that a user's data causes may go.

A DNS provider's API URL, a notification URL, a name server for RFC 2136: a customer types
them, and the panel connects. Unchecked, that lets a customer make the server reach its own
network (loopback services, the private LAN, a cloud's metadata service) and sometimes read
the answer back. So, for objects owned by users who are not administrators:

* the address actually connected to is checked, not the text of a URL: `guarded()` is a
  context in which every `socket.connect`, `connect_ex` and `sendto` of this process (and of
  the threads that copy the context, as apprise does) is vetted first. A host name is resolved
  here and the connection goes to the vetted address, so DNS cannot answer differently
  between the check and the connect; redirects and every library are checked alike;
* internal addresses (`forbidden_reason`) are refused unless an administrator put the
  destination on the outbound allow-list (`parse_allow_list`; stored in PanelSettings and read
  through the hook `use_allow_list`, set up in panel.apps, since the toolkit imports nothing of
  the project);
* a socket left without a timeout gets one (`DEFAULT_TIMEOUT`), for administrators too: a
  remote end that stops answering must not hold a worker forever.

nginx upstreams are connected to by nginx, not by the panel: `check_host` resolves them when
they are saved and rendered.
"""

import contextvars
import ipaddress
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from panel.toolkit import access

DEFAULT_TIMEOUT = 30.0  # seconds for each connect and each read

METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
    "169.254.170.2",  # AWS ECS task metadata
    "100.100.100.200",  # Alibaba Cloud
    "fd00:ec2::254",  # AWS over IPv6
))
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT; Alibaba's metadata lives here
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundRefused(ConnectionRefusedError):
    """A connection to an address the policy forbids. An OSError, so that libraries handle it
    as the failed connection it is; `guarded()` re-raises it to its caller as itself."""


class Unresolved(OutboundRefused):
    """A host name with no address (now): nothing to check, so nothing to connect to."""


class OutboundTimeout(TimeoutError):
    """The remote end did not answer within the timeout."""


def forbidden_reason(address) -> str | None:
    """Why a user may not connect to `address` (an IP address), or None if it is on the internet."""
    ip = ipaddress.ip_address(address)
    if ip in METADATA:
        return _("a cloud metadata address")
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return forbidden_reason(embedded)
    if ip.is_loopback:
        return _("a loopback address")
    if ip.is_link_local:
        return _("a link-local address")
    if ip in SHARED:
        return _("a shared (carrier-grade NAT) address")
    if ip.is_multicast:
        return _("a multicast address")
    if ip.is_unspecified:
        return _("the unspecified address")
    if ip.is_private:
        return _("a private address")
    if ip.is_reserved or not ip.is_global:
        return _("a reserved address")
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address):
    """The IPv4 address an IPv6 form carries (::ffff:a.b.c.d, NAT64, 6to4), else None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return None


def _canonical(ip):
    """The address an allow-list entry is compared with: IPv4 for IPv4 carried in IPv6."""
    ip = ipaddress.ip_address(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        return _embedded_ipv4(ip) or ip
    return ip


# --- the allow-list


@dataclass(frozen=True)
class AllowEntry:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    port: int | None = None

    def permits(self, ip, port) -> bool:
        return _canonical(ip) in self.network and (self.port is None or self.port == port)

    def __str__(self):
        net = str(self.network.network_address) if self.network.num_addresses == 1 else str(self.network)
        if self.port is None:
            return net
        return f"[{net}]:{self.port}" if self.network.version == 6 else f"{net}:{self.port}"


def parse_allow_entry(text) -> AllowEntry:
    """`10.0.0.5`, `10.0.0.5:8081`, `192.168.1.0/24`, `::1`, `[::1]:8053`, `[fd00::/8]:443`."""
    text = text.strip()
    host, port = text, None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValidationError(_("“%(entry)s” is not an address: write [IPv6]:port") % {"entry": text})
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        network = ipaddress.ip_network(host, strict=False)
        if port is not None:
            port = int(port)
            if not 0 < port < 65536:
                raise ValueError
    except ValueError:
        raise ValidationError(_("“%(entry)s” is not an IP address or network, with an optional port "
                                "(e.g. 10.0.0.5:8081, 192.168.1.0/24, [::1]:8053).") % {"entry": text}) from None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen == 128:
        embedded = _embedded_ipv4(network.network_address)
        if embedded is not None:
            network = ipaddress.ip_network(embedded)
    return AllowEntry(network, port)


def parse_allow_list(text) -> tuple[AllowEntry, ...]:
    """Entries separated by new lines, commas or spaces; ValidationError names a bad one."""
    entries = (text or "").replace(",", " ").split()
    return tuple(parse_allow_entry(entry) for entry in entries)


def allow_list_text(text) -> str:
    """The allow-list as it is stored: one normalised entry per line."""
    return "\n".join(dict.fromkeys(str(entry) for entry in parse_allow_list(text)))


_allow_list_source = tuple  # replaced through use_allow_list() once the apps are ready


def use_allow_list(source):
    """`source()` returns the current allow-list entries (panel.apps passes PanelSettings')."""
    global _allow_list_source
    _allow_list_source = source


def allow_list() -> tuple[AllowEntry, ...]:
    return tuple(_allow_list_source())


def _where(host, port):
    host = str(host)
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listed(ip, port=None, allow=None) -> bool:
    """Whether the allow-list has `ip`; with `port` None, an entry for any of its ports counts."""
    allow = allow_list() if allow is None else allow
    return any(_canonical(ip) in entry.network and (port is None or entry.port in (None, port)) for entry in allow)


def refusal_message(ip, port, reason) -> str:
    where = _where(ip, port)
    return _("Connecting to %(address)s is not allowed: it is %(reason)s. If this destination is meant to be "
             "reached, ask an administrator to add it to the outbound allow-list.") % {
        "address": where, "reason": reason}


def check_address(ip, port=None, allow=None):
    """Raise OutboundRefused unless `ip` (with `port`, if known) is public or allow-listed."""
    reason = forbidden_reason(ip)
    if reason is None:
        return
    allow = allow_list() if allow is None else allow
    if any(entry.permits(ip, port) for entry in allow):
        return
    raise OutboundRefused(refusal_message(ip, port, reason))


def numeric_ipv4(host):
    """The address an IPv4 literal in any form the C library accepts means (127.1, 0x7f000001,
    2130706433, 0), or None for anything else."""
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError, UnicodeError):
        return None


def check_host(host, port=None, allow=None):
    """Resolve `host` (a name or an IP literal in any form) and check every address it has (a
    name that does not resolve has none: whoever connects finds that out).
    A single-label name (`redis`, `postgres`) names a service of the server's own network: it
    passes only if every address it resolves to is on the allow-list."""
    host = host.strip("[]").rstrip(".").lower()
    allow = allow_list() if allow is None else tuple(allow)
    try:
        addresses = [ipaddress.ip_address(host.split("%")[0])]
    except ValueError:
        literal = numeric_ipv4(host)
        addresses = [literal] if literal is not None else None
    if addresses is None:
        if host.endswith(".localhost"):  # loopback by definition (RFC 6761), however it resolves here
            raise OutboundRefused(refusal_message(host, port, _("a loopback address")))
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        except (OSError, UnicodeError, ValueError):
            addresses = []
        if "." not in host and not (addresses and all(listed(ip, port, allow) for ip in addresses)):
            raise OutboundRefused(
                _("“%(host)s” is a name of the server's own network, not an internet host name. Use a public "
                  "host name, or ask an administrator to add its address to the outbound allow-list and use "
                  "that address.") % {"host": host})
    for ip in dict.fromkeys(addresses):
        check_address(ip, port, allow)
    return addresses


def check_url(url, allow=None):
    """check_host for the host and port of an http(s) URL (a site's upstream)."""
    parts = urlsplit(url)
    check_host(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), allow)


def pinned_url(url, allow=None):
    """`url` with its host name replaced by the address check_host vetted, for a connection
    someone else makes later (nginx resolves an upstream's name again at every reload: a DNS
    record changed to 127.0.0.1 after the check would otherwise be obeyed)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = check_host(parts.hostname or "", port, allow)
    if not addresses:
        raise Unresolved(_("“%(host)s” does not resolve to any address.") % {"host": parts.hostname})
    ip = addresses[0]
    netloc = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# --- the guard around sockets


@dataclass
class Policy:
    restrict: bool
    allow: tuple = ()
    timeout: float = DEFAULT_TIMEOUT
    refused: OutboundRefused | None = None
    last_address: str = ""

    def vet(self, sock, address):
        """The address to connect to instead of `address`: resolved and checked."""
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            if self.restrict:
                self._refuse(OutboundRefused(_("Connecting to a local socket is not allowed.")))
            return address
        if sock.gettimeout() is None:
            _original_settimeout(sock, self.timeout)
        host, port = address[0], address[1]
        self.last_address = _where(host, port)
        if not self.restrict:
            return address
        try:
            ipaddress.ip_address(host.split("%")[0])
            resolved = address
        except ValueError:
            # Resolved here, once: the C library must not resolve the name again after the check.
            literal = numeric_ipv4(host) if sock.family == socket.AF_INET else None
            resolved = (str(literal), port) if literal else socket.getaddrinfo(host, port, sock.family, sock.type)[0][4]
        ip = resolved[0].split("%")[0]
        self.last_address = _where(ip, port)
        try:
            check_address(ip, port, self.allow)
        except OutboundRefused as exc:
            self._refuse(exc)
        return resolved

    def _refuse(self, exc):
        self.refused = exc
        raise exc


_current = contextvars.ContextVar("outbound_policy", default=None)
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_sendto = socket.socket.sendto
_original_settimeout = socket.socket.settimeout
_install_lock = threading.Lock()
_installed = False


def _connect(self, address):
    policy = _current.get()
    if policy is not None:
        address = policy.vet(self, address)
    return _original_connect(self, address)


def _connect_ex(self, address):
    policy = _current.get()
    if policy is not None:
        address = policy.vet(self, address)
    return _original_connect_ex(self, address)


def _sendto(self, data, *args):
    policy = _current.get()
    if policy is not None and args:
        args = (*args[:-1], policy.vet(self, args[-1]))
    return _original_sendto(self, data, *args)


def _settimeout(self, value):
    # urllib3 sets the socket's timeout to what requests was given: nothing, for most of lexicon.
    if value is None and _current.get() is not None:
        value = _current.get().timeout
    return _original_settimeout(self, value)


def install():
    """Wrap socket.socket's connect, connect_ex, sendto and settimeout, once per process. Outside
    a guarded() context the wrappers only call the originals."""
    global _installed
    with _install_lock:
        if _installed:
            return
        socket.socket.connect = _connect
        socket.socket.connect_ex = _connect_ex
        socket.socket.sendto = _sendto
        socket.socket.settimeout = _settimeout
        _installed = True


@contextmanager
def guarded(restrict=True, allow=None, timeout=None):
    """Every connection made in this context (this thread, and threads started with a copy of
    its context) is vetted. `restrict` False (an administrator's object) only adds timeouts.
    Raises OutboundRefused when the code inside failed because a connection was refused, and
    OutboundTimeout when it failed because the remote end did not answer in time."""
    install()
    policy = Policy(restrict=restrict, timeout=DEFAULT_TIMEOUT if timeout is None else timeout)
    if restrict:
        policy.allow = allow_list() if allow is None else tuple(allow)
    token = _current.set(policy)
    try:
        yield policy
    except Exception as exc:
        if policy.refused is not None:
            raise policy.refused from None
        if _timed_out(exc):
            raise OutboundTimeout(
                _("No answer from %(address)s within %(seconds)s seconds.")
                % {"address": policy.last_address or _("the remote server"), "seconds": f"{policy.timeout:g}"}
            ) from None
        raise
    finally:
        _current.reset(token)


def guarded_for(owner, timeout=None, allow=None):
    """The guard for an object owned by `owner`: administrators are trusted with the server.
    `allow`: the allow-list read beforehand, for a thread that must not read the database."""
    return guarded(restrict=not access.is_admin(owner), allow=allow, timeout=timeout)


def _timed_out(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, TimeoutError):  # socket.timeout; requests' and urllib3's carry one in their chain
            return True
        exc = exc.__cause__ or exc.__context__
    return False
