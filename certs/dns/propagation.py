"""Is a TXT record visible yet? Asked of the zone's authoritative servers, not a cache.

With CERTPANEL_DNS_RESOLVERS set (private setups, tests), those servers are asked
instead. One check is quick and never sleeps: the order state machine calls it
again later while it waits.
"""

from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
from django.conf import settings

from panel.toolkit import outbound
from panel.toolkit.config import split_host_port

TIMEOUT = 3


@dataclass(frozen=True)
class Missing:
    server: str
    name: str
    value: str

    def __str__(self):
        return f"TXT {self.name} = {self.value!r} not visible at {self.server}"


def _configured_servers():
    servers = []
    for item in settings.DNS_RESOLVERS:
        host, port = split_host_port(item)  # 192.0.2.53, 192.0.2.53:5353, 2001:db8::53, [2001:db8::53]:5353
        servers.append((host, int(port) if port else 53))
    return servers


def _resolver():
    resolver = dns.resolver.Resolver(configure=not settings.DNS_RESOLVERS)
    if settings.DNS_RESOLVERS:
        servers = _configured_servers()
        resolver.nameservers = [host for host, _ in servers]
        resolver.nameserver_ports = dict(servers)
    resolver.lifetime = TIMEOUT * 2
    return resolver


def authoritative_servers(name):
    """(address, port) of the servers authoritative for `name`'s zone."""
    if settings.DNS_RESOLVERS:
        return _configured_servers()
    resolver = _resolver()
    zone = dns.resolver.zone_for_name(name, resolver=resolver)
    servers = []
    for ns in resolver.resolve(zone, dns.rdatatype.NS):
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                servers += [(a.address, 53) for a in resolver.resolve(ns.target, rdtype)]
            except dns.exception.DNSException:
                pass
    return servers


def _txt_values(server, name):
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    response = dns.query.udp(query, server[0], port=server[1], timeout=TIMEOUT)
    if response.flags & dns.flags.TC:
        response = dns.query.tcp(query, server[0], port=server[1], timeout=TIMEOUT)
    values = set()
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            values.update(b"".join(r.strings).decode() for r in rrset)
    return values


def missing_records(records, internal_allowed=True):
    """Of (name, value) pairs, those some authoritative server does not serve yet. Without
    `internal_allowed` (a user's order), a zone's name servers at internal addresses are not
    asked (panel.toolkit.outbound): the zone's owner chooses them, not the panel."""
    missing = []
    by_name = {}
    for name, value in records:
        by_name.setdefault(name, set()).add(value)
    for name, values in by_name.items():
        try:
            servers = authoritative_servers(name)
        except dns.exception.DNSException as exc:
            missing += [Missing(f"(no authoritative server found: {exc})", name, v) for v in sorted(values)]
            continue
        if not internal_allowed and not settings.DNS_RESOLVERS:
            internal = [s for s in servers if outbound.forbidden_reason(s[0]) and not outbound.listed(s[0], s[1])]
            servers = [s for s in servers if s not in internal]
            if internal and not servers:
                where = "(only internal name servers, not asked: " + ", ".join(s[0] for s in internal) + ")"
                missing += [Missing(where, name, v) for v in sorted(values)]
                continue
        for server in servers:
            where = f"{server[0]}:{server[1]}"
            try:
                seen = _txt_values(server, name)
            except (OSError, dns.exception.DNSException):
                seen = set()
            missing += [Missing(where, name, v) for v in sorted(values - seen)]
    return missing


def cname_target(name):
    """Where `name` is a CNAME to, or None."""
    try:
        answer = _resolver().resolve(name, dns.rdatatype.CNAME)
    except dns.exception.DNSException:
        return None
    return answer[0].target.to_text().rstrip(".").lower()
