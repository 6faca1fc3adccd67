"""Smoke tests of the DNS harness: real BIND 9 (RFC 2136 with TSIG, via nsupdate), real PowerDNS
(gsqlite3 backend and HTTP API) and the forwarding BIND resolver that puts them behind one address."""

import dns.rcode
import pytest
import requests

from tests.support import BindServer, HarnessError, wait_until

LOOPBACK = "127.0.0.1"


def test_bind_answers_soa_ns_and_a(bind_server):
    assert bind_server.address == LOOPBACK
    soa = bind_server.query("example.test", "SOA")
    assert len(soa) == 1 and soa[0].startswith("ns1.example.test. hostmaster.example.test. ")
    assert bind_server.query("example.test", "NS") == ["ns1.example.test."]
    for name in ("www.example.test", "example.test", "ns1.example.test", "deep.site.example.test"):
        assert bind_server.query(name, "A") == [LOOPBACK], name
    assert bind_server.query("www.example.test", "AAAA") == []  # IPv4 only: Pebble dials the first address
    with pytest.raises(HarnessError, match="REFUSED"):  # not a zone of this server, no recursion
        bind_server.query("www.other.test", "A")


def test_bind_nsupdate_adds_and_deletes_txt(bind_server):
    name = "_acme-challenge.www.example.test"
    assert bind_server.query(name, "TXT") == []
    bind_server.nsupdate_add_txt(name, "first-token")
    bind_server.nsupdate_add_txt(name + ".", "second token with \"quotes\"")
    assert bind_server.query(name, "TXT") == ["first-token", 'second token with "quotes"']

    bind_server.nsupdate_delete_txt(name, "first-token")
    assert bind_server.query(name, "TXT") == ['second token with "quotes"']
    bind_server.nsupdate_delete_txt(name)
    assert bind_server.query(name, "TXT") == []
    # The name is gone altogether (www.example.test exists, so *.example.test does not cover it).
    assert bind_server.query_message(name, "TXT").rcode() == dns.rcode.NXDOMAIN


def test_bind_challenge_record_hides_the_wildcard_for_unlisted_names(bind_server):
    # "www" is listed in `hosts` (explicit A); "shop" only matches the wildcard until
    # _acme-challenge.shop makes it an empty non-terminal. add_a() restores it.
    for site in ("www", "shop"):
        bind_server.nsupdate_add_txt(f"_acme-challenge.{site}.example.test", "token")
    assert bind_server.query("www.example.test", "A") == [LOOPBACK]
    assert bind_server.query("shop.example.test", "A") == []
    bind_server.add_a("shop.example.test")
    assert bind_server.query("shop.example.test", "A") == [LOOPBACK]


def test_bind_refuses_updates_without_the_key(bind_server, tmp_path):
    impostor = BindServer(tmp_path / "unused", zones=bind_server.zones, port=bind_server.port)  # other secret
    with pytest.raises(HarnessError, match="nsupdate failed"):
        impostor.nsupdate_add_txt("_acme-challenge.example.test", "forged")
    assert bind_server.query("_acme-challenge.example.test", "TXT") == []


def test_bind_cname_added_by_nsupdate_resolves(bind_server):
    bind_server.add_cname("_acme-challenge.www.example.test", "www.validation.example.test")
    bind_server.nsupdate_add_txt("www.validation.example.test", "delegated-token")
    assert bind_server.query("_acme-challenge.www.example.test", "CNAME") == ["www.validation.example.test."]
    # Within one zone the authoritative server follows the CNAME itself.
    assert bind_server.query("_acme-challenge.www.example.test", "TXT") == ["delegated-token"]


@pytest.mark.bind(zones=["example.test", "alias.test"])
def test_bind_two_zones_in_one_server(bind_server):
    assert bind_server.zones == ("example.test", "alias.test")
    for zone in bind_server.zones:
        assert bind_server.query(zone, "SOA")[0].startswith(f"ns1.{zone}. ")
        assert bind_server.query(f"www.{zone}", "A") == [LOOPBACK]
    bind_server.nsupdate_add_txt("_acme-challenge.www.alias.test", "in-alias-zone")
    assert bind_server.zone_for("_acme-challenge.www.alias.test") == "alias.test"
    assert bind_server.query("_acme-challenge.www.alias.test", "TXT") == ["in-alias-zone"]

    bind_server.add_cname("_acme-challenge.www.example.test", "_acme-challenge.www.alias.test")
    # An authoritative BIND stops at the zone boundary: the CNAME alone, no TXT.
    assert bind_server.query("_acme-challenge.www.example.test", "CNAME") == ["_acme-challenge.www.alias.test."]
    assert bind_server.query("_acme-challenge.www.example.test", "TXT") == []


@pytest.mark.bind(zones=["example.test", "alias.test"])
def test_resolver_follows_cname_across_zones(bind_server, dns_resolver):
    bind_server.add_cname("_acme-challenge.www.example.test", "_acme-challenge.www.alias.test")
    bind_server.nsupdate_add_txt("_acme-challenge.www.alias.test", "via-alias")
    assert dns_resolver.query("_acme-challenge.www.example.test", "TXT") == ["via-alias"]
    assert dns_resolver.query("www.alias.test", "A") == [LOOPBACK]
    # Cached for at most a second (TTL 0; BIND counts time in whole seconds).
    bind_server.nsupdate_delete_txt("_acme-challenge.www.alias.test")
    wait_until(lambda: dns_resolver.query("_acme-challenge.www.example.test", "TXT") == [], 3.0, "deletion to show")
    # Names outside the forwarded zones: NXDOMAIN, without any query leaving loopback.
    assert dns_resolver.query("www.example.com", "A") == []


def test_two_bind_servers_at_once(bind_server, tmp_path):
    with BindServer(tmp_path / "second", zones=["second.test"]) as second:
        assert second.port != bind_server.port
        assert second.tsig_secret != bind_server.tsig_secret
        second.nsupdate_add_txt("_acme-challenge.second.test", "second-server")
        bind_server.nsupdate_add_txt("_acme-challenge.example.test", "first-server")
        assert second.query("_acme-challenge.second.test", "TXT") == ["second-server"]
        assert bind_server.query("_acme-challenge.example.test", "TXT") == ["first-server"]
    assert not second.process.alive


def test_powerdns_answers_soa_and_api_lists_zone(powerdns_server):
    soa = powerdns_server.query("example.test", "SOA")
    assert len(soa) == 1 and soa[0].startswith("ns1.example.test. hostmaster.example.test. ")
    assert powerdns_server.query("www.example.test", "A") == [LOOPBACK]
    assert powerdns_server.query("www.example.test", "AAAA") == []

    zones_url = f"{powerdns_server.api_url}/api/v1/servers/{powerdns_server.server_id}/zones"
    response = requests.get(zones_url, headers={"X-API-Key": powerdns_server.api_key}, timeout=5)
    assert response.status_code == 200
    assert [z["name"] for z in response.json()] == ["example.test."]
    assert requests.get(zones_url, headers={"X-API-Key": "wrong"}, timeout=5).status_code == 401


def test_powerdns_api_patch_is_visible_by_dns(powerdns_server):
    name = "_acme-challenge.www.example.test."
    serial_before = powerdns_server.get_zone()["serial"]
    response = requests.patch(
        f"{powerdns_server.api_url}/api/v1/servers/localhost/zones/example.test.",
        headers={"X-API-Key": powerdns_server.api_key},
        json={"rrsets": [{"name": name, "type": "TXT", "ttl": 60, "changetype": "REPLACE",
                          "records": [{"content": '"patched-token"', "disabled": False}]}]},
        timeout=5,
    )
    assert response.status_code == 204, response.text
    assert powerdns_server.query(name, "TXT") == ["patched-token"]
    assert powerdns_server.get_zone()["serial"] > serial_before  # SOA-EDIT-API DEFAULT

    assert powerdns_server.query("www.example.test", "A") == [LOOPBACK]

    powerdns_server.set_txt(name, ["one", "two"])
    assert powerdns_server.query(name, "TXT") == ["one", "two"]
    powerdns_server.delete_rrset(name, "TXT")
    assert powerdns_server.query(name, "TXT") == []


@pytest.mark.powerdns(zone="pdns.test")
def test_resolver_in_front_of_bind_and_powerdns(bind_server, powerdns_server, dns_resolver):
    assert set(dns_resolver.zones) == {"example.test", "pdns.test"}
    powerdns_server.set_txt("_acme-challenge.www.pdns.test", "from-powerdns")
    bind_server.add_cname("_acme-challenge.www.example.test", "_acme-challenge.www.pdns.test")
    assert dns_resolver.query("_acme-challenge.www.example.test", "TXT") == ["from-powerdns"]
    assert dns_resolver.query("www.pdns.test", "A") == [LOOPBACK]
    assert dns_resolver.query("www.example.test", "A") == [LOOPBACK]
