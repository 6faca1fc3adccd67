"""DNS checks over IPv6: a zone's name servers are found by their AAAA records as well as their A
records, and a TXT record is looked for at a server reached over IPv6 — against a small DNS
server on the loopback addresses."""

import socket
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest

from certs.dns import propagation
from panel.toolkit.config import Env
from tests.support.ports import free_port

ZONE = "v6.example.test."
RECORDS = {
    (ZONE, "SOA"): ["ns1.v6.example.test. hostmaster.v6.example.test. 1 3600 600 86400 60"],
    (ZONE, "NS"): ["ns1.v6.example.test.", "ns2.v6.example.test."],
    ("ns1.v6.example.test.", "A"): ["192.0.2.53"],
    ("ns1.v6.example.test.", "AAAA"): ["2001:db8::53"],
    ("ns2.v6.example.test.", "AAAA"): ["2001:db8::54"],  # reachable over IPv6 only
    ("_acme-challenge.www.v6.example.test.", "TXT"): ['"token-value"'],
}


class ZoneServer:
    """Answers RECORDS over UDP on `host`, NOERROR with the SOA for names or types it lacks."""

    def __init__(self, host):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, free_port(udp=True)))
        self.port = self.sock.getsockname()[1]
        self.asked = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            question = query.question[0]
            name, kind = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
            self.asked.append((peer[0], name, kind))
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            if (name, kind) in RECORDS:
                response.answer.append(dns.rrset.from_text_list(name, 60, "IN", kind, RECORDS[name, kind]))
            else:
                response.authority.append(dns.rrset.from_text_list(ZONE, 60, "IN", "SOA", RECORDS[ZONE, "SOA"]))
            self.sock.sendto(response.to_wire(), peer)

    def close(self):
        self.sock.close()


@pytest.fixture
def server_on(request):
    servers = []

    def start(host):
        servers.append(ZoneServer(host))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_the_zones_name_servers_are_found_by_their_ipv6_addresses_too(settings, server_on, monkeypatch):
    server = server_on("127.0.0.1")
    settings.DNS_RESOLVERS = []  # the zone's own servers, found through NS and their A and AAAA records

    def resolver():
        asking = dns.resolver.Resolver(configure=False)
        asking.nameservers, asking.port = ["127.0.0.1"], server.port
        return asking

    monkeypatch.setattr(propagation, "_resolver", resolver)
    servers = propagation.authoritative_servers("_acme-challenge.www.v6.example.test")
    assert sorted(servers) == [("192.0.2.53", 53), ("2001:db8::53", 53), ("2001:db8::54", 53)]
    assert ("127.0.0.1", "ns2.v6.example.test.", "AAAA") in server.asked


def test_a_txt_record_is_checked_at_a_server_reached_over_ipv6(settings, server_on):
    server = server_on("::1")
    settings.DNS_RESOLVERS = [f"[::1]:{server.port}"]
    assert propagation.missing_records([("_acme-challenge.www.v6.example.test", "token-value")]) == []
    missing = propagation.missing_records([("_acme-challenge.www.v6.example.test", "other-value")])
    assert [str(m) for m in missing] == [
        f"TXT _acme-challenge.www.v6.example.test = 'other-value' not visible at ::1:{server.port}"]
    assert server.asked and all(peer == "::1" for peer, _, _ in server.asked)


def test_dns_resolvers_take_ipv6_addresses_with_and_without_a_port():
    env = Env({"CERTPANEL_DNS_RESOLVERS": "192.0.2.53, 192.0.2.53:5353, 2001:db8::53, [2001:db8::53]:5353"})
    assert env.ip_list("CERTPANEL_DNS_RESOLVERS") == [
        "192.0.2.53", "192.0.2.53:5353", "2001:db8::53", "[2001:db8::53]:5353"]
    bad = Env({"CERTPANEL_DNS_RESOLVERS": "[2001:db8::53]:99999, [nope]:53"})
    assert bad.ip_list("CERTPANEL_DNS_RESOLVERS") == [] and len(bad.problems) == 2
