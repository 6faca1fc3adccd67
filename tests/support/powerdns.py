"""Real PowerDNS Authoritative (pdns_server, gsqlite3 backend) on free loopback ports, with its
HTTP API (the one PowerDNS DNS providers talk to) on another.

Packages pdns-server and pdns-backend-sqlite3. Everything lives in `tmp_dir`: pdns.conf (read by
both pdns_server and pdnsutil through --config-dir), the SQLite database made from the schema the
backend package ships, the control socket and the log. The zone has SOA, NS ns1.<zone>., and
A 127.0.0.1 for ns1, the apex, *.<zone> and each of `hosts` (default www; see BindServer about
empty non-terminals and the wildcard); its SOA-EDIT-API is DEFAULT, so API changes bump the
serial. Packet and query caches are off: an API change is visible by DNS at once.
"""

from __future__ import annotations

import gzip
import secrets
import shutil
import sqlite3
import subprocess
from pathlib import Path

import requests

from .bind import DnsServerProcess, fqdn, zone_text
from .ports import LOOPBACK, free_port
from .process import HarnessError, ManagedProcess, wait_until

PDNS_SERVER_BIN = shutil.which("pdns_server") or "/usr/sbin/pdns_server"
PDNSUTIL_BIN = shutil.which("pdnsutil") or "/usr/bin/pdnsutil"
SCHEMA_CANDIDATES = (
    Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"),
    Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql"),
    Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql.gz"),
)


def sqlite_schema() -> str:
    for path in SCHEMA_CANDIDATES:
        if path.exists():
            data = path.read_bytes()
            return (gzip.decompress(data) if path.suffix == ".gz" else data).decode()
    raise HarnessError("the gsqlite3 schema was not found; install pdns-backend-sqlite3 "
                       f"(looked for {', '.join(map(str, SCHEMA_CANDIDATES))})")


class PowerDnsServer(DnsServerProcess):
    """pdns_server authoritative for `zone`, DNS on 127.0.0.1:`port`, API at `api_url`."""

    server_id = "localhost"

    def __init__(self, tmp_dir, zone: str = "example.test", port: int | None = None,
                 api_port: int | None = None, api_key: str | None = None, hosts=("www",),
                 start_timeout: float = 20.0):
        super().__init__(tmp_dir, port, start_timeout)
        self.zone = zone.rstrip(".").lower()
        self.hosts = (hosts,) if isinstance(hosts, str) else tuple(hosts)
        self.api_port = api_port or free_port()
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.config_path = self.tmp_dir / "pdns.conf"
        self.database_path = self.tmp_dir / "pdns.sqlite3"

    # --- addresses
    @property
    def zones(self) -> tuple[str, ...]:
        return (self.zone,)

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    # --- lifecycle
    def write_config(self) -> Path:
        settings = {
            "launch": "gsqlite3",
            "gsqlite3-database": self.database_path,
            "local-address": LOOPBACK,
            "local-port": self.port,
            "socket-dir": self.tmp_dir,
            "daemon": "no",
            "guardian": "no",
            "disable-syslog": "yes",
            "loglevel": 5,
            "api": "yes",
            "api-key": self.api_key,
            "webserver": "yes",
            "webserver-address": LOOPBACK,
            "webserver-port": self.api_port,
            "webserver-allow-from": "127.0.0.0/8",
            "primary": "no",
            "secondary": "no",
            "security-poll-suffix": "",  # no status lookups on the internet
            "cache-ttl": 0,
            "query-cache-ttl": 0,
            "negquery-cache-ttl": 0,
        }
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        return self.config_path

    def pdnsutil(self, *args: str) -> str:
        result = subprocess.run([PDNSUTIL_BIN, f"--config-dir={self.tmp_dir}", *args],
                                check=False, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise HarnessError(f"pdnsutil {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}")
        return result.stdout

    def create_database(self) -> None:
        self.database_path.unlink(missing_ok=True)
        with sqlite3.connect(self.database_path) as db:
            db.executescript(sqlite_schema())
        # One pdnsutil load-zone (the same records as BindServer's zone file) instead of
        # create-zone + one add-record each: every pdnsutil run costs ~0.1 s.
        zone_file = self.tmp_dir / f"{self.zone}.zone"
        zone_file.write_text(f"$ORIGIN {self.zone}.\n" + zone_text(self.zone, self.hosts))
        self.pdnsutil("load-zone", self.zone, str(zone_file))
        self.pdnsutil("set-meta", self.zone, "SOA-EDIT-API", "DEFAULT")

    def start(self) -> PowerDnsServer:
        self.write_config()
        self.create_database()
        self.process = ManagedProcess(
            "pdns_server", [PDNS_SERVER_BIN, f"--config-dir={self.tmp_dir}"], self.tmp_dir / "pdns.log",
            cwd=self.tmp_dir,
        ).start()
        try:
            wait_until(lambda: self.query(self.zone, "SOA", timeout=1.0, tcp=True), self.start_timeout,
                       f"pdns_server to answer SOA {self.zone} on port {self.port}", processes=(self.process,))
            wait_until(lambda: self.api("GET", "", timeout=1.0).ok, self.start_timeout,
                       "the PowerDNS API", processes=(self.process,))
        except BaseException:
            self.stop()
            raise
        return self

    # --- HTTP API (/api/v1/servers/localhost/...)
    def api(self, method: str, path: str, json=None, timeout: float = 5.0) -> requests.Response:
        """A request to {api_url}/api/v1/servers/localhost{path} with the API key."""
        url = f"{self.api_url}/api/v1/servers/{self.server_id}{path}"
        return requests.request(method, url, json=json, headers={"X-API-Key": self.api_key}, timeout=timeout)

    def _checked(self, response: requests.Response) -> requests.Response:
        if not response.ok:
            raise HarnessError(f"PowerDNS API {response.request.method} {response.url}: "
                               f"HTTP {response.status_code} {response.text}")
        return response

    def list_zones(self) -> list[dict]:
        return self._checked(self.api("GET", "/zones")).json()

    def get_zone(self, zone: str | None = None) -> dict:
        return self._checked(self.api("GET", f"/zones/{fqdn(zone or self.zone)}")).json()

    def patch_rrsets(self, rrsets: list[dict], zone: str | None = None) -> None:
        """PATCH /zones/<zone> with {"rrsets": rrsets} (names must be absolute, with the dot)."""
        self._checked(self.api("PATCH", f"/zones/{fqdn(zone or self.zone)}", json={"rrsets": rrsets}))

    def set_txt(self, name: str, values, ttl: int = 60) -> None:
        """REPLACE the TXT rrset at `name` with `values` through the API."""
        if isinstance(values, str):
            values = [values]
        records = [{"content": '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"', "disabled": False}
                   for v in values]
        self.patch_rrsets([{"name": fqdn(name), "type": "TXT", "ttl": ttl, "changetype": "REPLACE",
                            "records": records}])

    def delete_rrset(self, name: str, rdtype: str) -> None:
        self.patch_rrsets([{"name": fqdn(name), "type": rdtype, "changetype": "DELETE"}])
