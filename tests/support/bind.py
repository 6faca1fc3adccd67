"""Real BIND 9 on a free loopback port: an authoritative primary with RFC 2136 updates (TSIG),
and a forwarding resolver in front of one or more authoritative servers.

BindServer: `named -g` (foreground, log on stderr) with one primary zone per name, each zone
updatable with one TSIG key. Every zone has SOA, NS ns1.<zone>., and A 127.0.0.1 for ns1, the
apex and *.<zone> (so HTTP-01 validation and DNS lookups of site names reach loopback); no AAAA.
Records are added "out of band" with the real `nsupdate` binary (package bind9-dnsutils).

BindResolver: a recursive `named` that knows nothing but the zones it forwards to the given
authoritative servers (a cache of at most 1 s, no DNSSEC validation, no query ever leaves loopback). Use it
when one DNS address must see several servers' zones, or must follow a CNAME from one zone into
another: an authoritative BIND does not follow a CNAME out of the zone it answers from, so
`_acme-challenge.www.example.test CNAME x.alias.test` asked of BindServer directly yields the
CNAME alone, while the resolver answers the CNAME and the target's TXT (what Pebble's VA needs).

Both work as root and as an ordinary user, without systemd; each instance has its own directory,
port, pid file, session key and no rndc control channel, so any number run in parallel.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from .ports import LOOPBACK, free_port
from .process import HarnessError, ManagedProcess, dump_logs, wait_until

NAMED_BIN = shutil.which("named") or "/usr/sbin/named"
NSUPDATE_BIN = shutil.which("nsupdate") or "/usr/bin/nsupdate"


# --- DNS queries (shared with powerdns.py)

def fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def query_message(host: str, port: int, name: str, rdtype: str, timeout: float = 3.0, recursion: bool = True,
                  tcp: bool = False):
    """One DNS query over UDP (TCP if the answer is truncated, or if `tcp`); the whole dns.message.Message."""
    request = dns.message.make_query(fqdn(name), dns.rdatatype.from_text(rdtype))
    if not recursion:
        request.flags &= ~dns.flags.RD
    if tcp:  # a server not listening yet fails at once (connection refused) instead of timing out
        return dns.query.tcp(request, host, port=port, timeout=timeout)
    response = dns.query.udp(request, host, port=port, timeout=timeout)
    if response.flags & dns.flags.TC:
        response = dns.query.tcp(request, host, port=port, timeout=timeout)
    return response


def rdata_text(rdata) -> str:
    """TXT: the value itself (strings joined, unquoted); other types: presentation format."""
    if rdata.rdtype == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode()
    return rdata.to_text()


def query_records(host: str, port: int, name: str, rdtype: str, timeout: float = 3.0, tcp: bool = False) -> list[str]:
    """The answer section's records of type `rdtype` (at any owner name, so the end of a CNAME
    chain the server followed counts), sorted. [] for NXDOMAIN or no data; raises HarnessError
    on any other rcode (REFUSED: not a zone of this server, SERVFAIL, ...)."""
    response = query_message(host, port, name, rdtype, timeout, tcp=tcp)
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return []
    if rcode != dns.rcode.NOERROR:
        raise HarnessError(f"{rdtype} {name} at {host}:{port}: {dns.rcode.to_text(rcode)}")
    wanted = dns.rdatatype.from_text(rdtype)
    return sorted(rdata_text(r) for rrset in response.answer if rrset.rdtype == wanted for r in rrset)


def zone_text(zone: str, hosts=(), serial: int = 1) -> str:
    zone = zone.rstrip(".")
    return (
        "$TTL 60\n"
        f"@ IN SOA ns1.{zone}. hostmaster.{zone}. ( {serial} 3600 600 86400 60 )\n"
        f"@ IN NS ns1.{zone}.\n"
        f"ns1 IN A {LOOPBACK}\n"
        f"@ IN A {LOOPBACK}\n"
        f"* IN A {LOOPBACK}\n"
        + "".join(f"{host} IN A {LOOPBACK}\n" for host in hosts)
    )


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DnsServerProcess:
    """One DNS server process in `tmp_dir` on 127.0.0.1:`port`: what BIND and PowerDNS
    share (addresses, logs, stop, queries). Subclasses start it."""

    def __init__(self, tmp_dir, port: int | None, start_timeout: float):
        self.tmp_dir = Path(tmp_dir).resolve()
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.address = LOOPBACK
        self.port = port or free_port(udp=True)
        self.start_timeout = start_timeout
        self.process: ManagedProcess | None = None

    @property
    def server_address(self) -> str:
        """host:port, e.g. for `pebble -dnsserver` or CERTPANEL_DNS_RESOLVERS."""
        return f"{self.address}:{self.port}"

    @property
    def log_paths(self) -> list[Path]:
        return [self.process.log_path] if self.process else []

    def dump_logs(self, lines: int = 80) -> str:
        return dump_logs(self.log_paths, lines)

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def query(self, name: str, rdtype: str = "A", timeout: float = 3.0, tcp: bool = False) -> list[str]:
        """Records of type `rdtype` in the answer (TXT as plain values, others as text), sorted."""
        return query_records(self.address, self.port, name, rdtype, timeout, tcp)

    def query_message(self, name: str, rdtype: str = "A", timeout: float = 3.0, tcp: bool = False):
        return query_message(self.address, self.port, name, rdtype, timeout, tcp=tcp)


class _Named(DnsServerProcess):
    """What BindServer and BindResolver share: one `named -g` in `tmp_dir` on `port`."""

    name = "named"

    def __init__(self, tmp_dir, port: int | None, start_timeout: float):
        super().__init__(tmp_dir, port, start_timeout)
        self.config_path = self.tmp_dir / "named.conf"

    def _options(self) -> list[str]:
        d = self.tmp_dir
        return [
            f'directory "{d}";',
            f"listen-on port {self.port} {{ {LOOPBACK}; }};",
            "listen-on-v6 { none; };",
            f'pid-file "{d}/named.pid";',
            f'session-keyfile "{d}/session.key";',
            f'managed-keys-directory "{d}";',
            f'dump-file "{d}/named_dump.db";',
            f'statistics-file "{d}/named.stats";',
            "allow-query { any; };",
            "dnssec-validation no;",
            "notify no;",
        ]

    def _config(self) -> str:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self):
        self.config_path.write_text(self._config())
        if shutil.which("named-checkconf"):  # a clear message instead of named's exit status
            check = subprocess.run(["named-checkconf", str(self.config_path)],
                                   check=False, capture_output=True, text=True)
            if check.returncode != 0:
                raise HarnessError(f"named-checkconf {self.config_path}:\n{check.stdout}{check.stderr}")
        # -g: foreground, log to stderr; -4: IPv4 only. No -u: as root named stays root (no
        # 'bind' user needed), as another user it runs as that user.
        self.process = ManagedProcess(
            self.name, [NAMED_BIN, "-g", "-4", "-c", str(self.config_path)], self.tmp_dir / "named.log",
            cwd=self.tmp_dir,
        ).start()
        try:
            wait_until(self._ready, self.start_timeout, f"{self.name} on port {self.port} to answer",
                       interval=0.05, processes=(self.process,))
        except BaseException:
            self.stop()
            raise
        return self


class BindServer(_Named):
    """Authoritative BIND 9: primary zones `zones` on 127.0.0.1:`port`, updatable with one TSIG key.

    tsig_secret is generated (base64 of 32 random bytes) unless given.
    hosts: relative names given their own A 127.0.0.1 in every zone (default "www"). The wildcard
    alone is not enough for a site name that gets a challenge record: once
    _acme-challenge.shop.<zone> exists, shop.<zone> is an empty non-terminal and the wildcard no
    longer applies to it (RFC 4592), so A shop.<zone> is NOERROR with no data. List such site
    names here, or add_a() them.
    """

    name = "named"

    def __init__(
        self,
        tmp_dir,
        zones=("example.test",),
        port: int | None = None,
        tsig_key_name: str = "certpanel-key",
        tsig_algorithm: str = "hmac-sha256",
        tsig_secret: str | None = None,
        hosts=("www",),
        start_timeout: float = 20.0,
    ):
        super().__init__(tmp_dir, port, start_timeout)
        self.hosts = (hosts,) if isinstance(hosts, str) else tuple(hosts)
        if isinstance(zones, str):
            zones = (zones,)
        self.zones = tuple(z.rstrip(".").lower() for z in zones)
        if not self.zones:
            raise ValueError("BindServer needs at least one zone")
        self.tsig_key_name = tsig_key_name
        self.tsig_algorithm = tsig_algorithm
        self.tsig_secret = tsig_secret or base64.b64encode(secrets.token_bytes(32)).decode()
        self.key_path = self.tmp_dir / "tsig.key"

    @property
    def zone(self) -> str:
        """The first zone."""
        return self.zones[0]

    def zone_path(self, zone: str) -> Path:
        return self.tmp_dir / f"{zone}.zone"

    @property
    def tsig(self) -> dict:
        """The RFC 2136 settings a DNS provider needs (names as in certs/dns/rfc2136.py)."""
        return {
            "server": self.address,
            "port": str(self.port),
            "tsig_key_name": self.tsig_key_name,
            "tsig_algorithm": self.tsig_algorithm,
            "tsig_secret": self.tsig_secret,
        }

    def _config(self) -> str:
        key_clause = (
            f'key "{self.tsig_key_name}" {{\n'
            f"    algorithm {self.tsig_algorithm};\n"
            f'    secret "{self.tsig_secret}";\n'
            "};\n"
        )
        self.key_path.write_text(key_clause)
        os.chmod(self.key_path, 0o600)
        zones = []
        for zone in self.zones:
            self.zone_path(zone).write_text(zone_text(zone, self.hosts))
            zones.append(
                f'zone "{zone}" {{\n'
                "    type primary;\n"
                f'    file "{self.zone_path(zone)}";\n'
                f'    journal "{self.tmp_dir / (zone + ".jnl")}";\n'
                f'    allow-update {{ key "{self.tsig_key_name}"; }};\n'
                "};\n"
            )
        options = self._options() + ["recursion no;"]
        return (
            "options {\n" + "".join(f"    {o}\n" for o in options) + "};\n"
            "controls { };\n"  # no rndc channel (the default one would take 127.0.0.1:953)
            + key_clause + "".join(zones)
        )

    def _ready(self) -> bool:
        return all(self.query(zone, "SOA", timeout=1.0, tcp=True) for zone in self.zones)

    # --- out-of-band changes with the real nsupdate
    def zone_for(self, name: str) -> str:
        """The zone of this server that `name` belongs to (the longest match)."""
        bare = name.rstrip(".").lower()
        matches = [z for z in self.zones if bare == z or bare.endswith("." + z)]
        if not matches:
            raise HarnessError(f"{name} is in none of this server's zones {self.zones}")
        return max(matches, key=len)

    def nsupdate(self, commands: list[str], zone: str | None = None, timeout: float = 15.0) -> str:
        """Run `nsupdate -y alg:name:secret` with `commands` (e.g. ["update add x. 60 TXT \"v\""]) and send."""
        script = [f"server {self.address} {self.port}"]
        if zone:
            script.append(f"zone {fqdn(zone)}")
        script += list(commands) + ["send", ""]
        result = subprocess.run(
            [NSUPDATE_BIN, "-y", f"{self.tsig_algorithm}:{self.tsig_key_name}:{self.tsig_secret}"],
            input="\n".join(script), check=False, capture_output=True, text=True, timeout=timeout,
        )
        if result.returncode != 0:
            raise HarnessError(
                f"nsupdate failed ({result.returncode}):\n--- script ---\n" + "\n".join(script)
                + f"\n--- output ---\n{result.stdout}{result.stderr}"
            )
        return result.stdout

    def nsupdate_add_txt(self, name: str, value: str, ttl: int = 60) -> None:
        self.nsupdate([f"update add {fqdn(name)} {ttl} TXT {_quoted(value)}"], self.zone_for(name))

    def nsupdate_delete_txt(self, name: str, value: str | None = None) -> None:
        """Delete one TXT value at `name`, or every TXT record there when `value` is None."""
        suffix = f" {_quoted(value)}" if value is not None else ""
        self.nsupdate([f"update delete {fqdn(name)} TXT{suffix}"], self.zone_for(name))

    def add_cname(self, name: str, target: str, ttl: int = 60) -> None:
        self.nsupdate([f"update add {fqdn(name)} {ttl} CNAME {fqdn(target)}"], self.zone_for(name))

    def add_a(self, name: str, address: str = LOOPBACK, ttl: int = 60) -> None:
        self.add_records(name, "A", [address], ttl)

    def delete_records(self, name: str, rdtype: str | None = None) -> None:
        """Delete every record of `rdtype` at `name` (all types when None)."""
        self.nsupdate([f"update delete {fqdn(name)}" + (f" {rdtype}" if rdtype else "")], self.zone_for(name))

    def add_records(self, name: str, rdtype: str, values, ttl: int = 60) -> None:
        """Add records of any type, e.g. add_records("mail.example.test", "A", ["127.0.0.2"])."""
        if isinstance(values, str):
            values = [values]
        lines = [
            f"update add {fqdn(name)} {ttl} {rdtype} {_quoted(v) if rdtype.upper() == 'TXT' else v}" for v in values
        ]
        self.nsupdate(lines, self.zone_for(name))


class BindResolver(_Named):
    """Recursive BIND that forwards `forward_zones` {zone: "host:port" or [(host, port), ...]}
    and answers NXDOMAIN for every other name (a private root zone delegates each forwarded
    zone; no query leaves 127.0.0.1). Answers are cached with TTL 0 (max-cache-ttl and
    max-ncache-ttl 0), which BIND, counting in whole seconds, still reuses until the current second
    ends: a record changed at an authoritative server shows through the resolver within 1 s.
    Build one from servers with BindResolver.for_servers(tmp_dir, bind_server, powerdns_server).
    """

    name = "named-resolver"

    def __init__(self, tmp_dir, forward_zones: dict, port: int | None = None, start_timeout: float = 20.0):
        super().__init__(tmp_dir, port, start_timeout)
        self.forward_zones: dict[str, list[tuple[str, int]]] = {}
        for zone, servers in forward_zones.items():
            if isinstance(servers, str):
                servers = [servers]
            parsed = []
            for server in servers:
                if isinstance(server, str):
                    host, _, port_text = server.rpartition(":")
                    server = (host, int(port_text))
                parsed.append((server[0], int(server[1])))
            self.forward_zones[zone.rstrip(".").lower()] = parsed
        if not self.forward_zones:
            raise ValueError("BindResolver needs at least one zone to forward")

    @classmethod
    def for_servers(cls, tmp_dir, *servers, **kwargs) -> BindResolver:
        """Forward every zone of each server (anything with .zones, .address and .port)."""
        zones: dict[str, list[tuple[str, int]]] = {}
        for server in servers:
            for zone in server.zones:
                if zone in zones:  # two different primaries for one zone: answers would vary
                    raise ValueError(f"zone {zone} is served by two of the servers; give them different zones")
                zones[zone] = [(server.address, server.port)]
        return cls(tmp_dir, zones, **kwargs)

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(self.forward_zones)

    def _config(self) -> str:
        root = self.tmp_dir / "root.zone"
        lines = [
            "$TTL 60",
            "@ IN SOA localhost. hostmaster.localhost. ( 1 3600 600 86400 0 )",
            "@ IN NS localhost.",
            f"localhost. IN A {LOOPBACK}",
        ]
        # The delegations make recursion (hence the forward zones) apply below each zone;
        # their addresses are never asked, forwarding is "only".
        for zone in self.forward_zones:
            lines += [f"{zone}. IN NS ns1.{zone}.", f"ns1.{zone}. IN A {LOOPBACK}"]
        root.write_text("\n".join(lines) + "\n")
        options = self._options() + [
            "recursion yes;",
            "allow-recursion { 127.0.0.0/8; };",
            "max-cache-ttl 0;",
            "max-ncache-ttl 0;",
            "qname-minimization off;",
        ]
        zones = [f'zone "." {{ type primary; file "{root}"; }};\n']
        for zone, servers in self.forward_zones.items():
            forwarders = " ".join(f"{host} port {port};" for host, port in servers)
            zones.append(f'zone "{zone}" {{ type forward; forward only; forwarders {{ {forwarders} }}; }};\n')
        return "options {\n" + "".join(f"    {o}\n" for o in options) + "};\ncontrols { };\n" + "".join(zones)

    def _ready(self) -> bool:
        # Each forwarded zone's SOA through the resolver: proves the forwarders answer too.
        return all(self.query(zone, "SOA", timeout=2.0, tcp=True) for zone in self.forward_zones)
