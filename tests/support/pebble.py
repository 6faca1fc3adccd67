"""Pebble (ACME test CA) and pebble-challtestsrv (its DNS), on private loopback ports.

Pebble 2.4: config keys listenAddress, managementListenAddress, certificate,
privateKey, httpPort, tlsPort, ocspResponderURL, externalAccountBindingRequired,
externalAccountMACKeys; management (HTTPS, same listener cert) serves /roots/0,
/intermediates/0, /root-keys/0, /intermediate-keys/0. challtestsrv 2.4's management API:
/set-default-ipv4, /set-default-ipv6, /add-a, /clear-a, /add-aaaa, /clear-aaaa, /set-txt,
/clear-txt, /add-caa, /clear-caa, /set-cname, /clear-cname, /set-servfail, ...
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .ports import LOOPBACK, free_port, port_open
from .process import HarnessError, ManagedProcess, dump_logs, stop_all, wait_until

PEBBLE_BIN = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV_BIN = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"
# Pebble >= 2.6 serves renewalInfo (ARI, RFC 9773): Debian 13's pebble is one; on Debian 12
# scripts/install-system-deps unpacks Debian 13's package here, beside the system's 2.4.
# Pebble(ari=True) runs it (or CERTPANEL_PEBBLE_ARI_BIN); everything else runs PEBBLE_BIN.
PEBBLE_ARI_DIR_BIN = "/usr/local/lib/certpanel/pebble-ari/usr/bin/pebble"


def pebble_ari_bin() -> str:
    chosen = os.environ.get("CERTPANEL_PEBBLE_ARI_BIN")
    if chosen:
        return chosen
    return PEBBLE_ARI_DIR_BIN if os.access(PEBBLE_ARI_DIR_BIN, os.X_OK) else PEBBLE_BIN


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def make_listener_certificates(directory: Path, names=("localhost",), ips=("127.0.0.1",)) -> tuple[Path, Path, Path]:
    """A throwaway CA and a leaf for Pebble's HTTPS listeners. Returns (ca.pem, cert.pem, key.pem)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=7)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CertPanel e2e Pebble listener CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else ips[0])]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    ca_path, cert_path, key_path = directory / "listener-ca.pem", directory / "listener-cert.pem", directory / "listener-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(leaf_key))
    os.chmod(key_path, 0o600)
    return ca_path, cert_path, key_path


class Pebble:
    """Pebble + pebble-challtestsrv in `tmp_dir`, every port free and on 127.0.0.1.

    http_port: where Pebble's VA sends HTTP-01 requests (the nginx HTTP port); a free
    port is chosen when omitted, read it back from `.http_port`. Every name resolves
    (via challtestsrv's DNS) to 127.0.0.1, never to an IPv6 address.
    nosleep=False lets Pebble sleep 0..va_sleep_seconds between validation attempts.
    dns_server="127.0.0.1:port" makes Pebble resolve through that server (BIND in DNS-01 tests).
    env: extra environment for pebble (e.g. {"PEBBLE_WFE_NONCEREJECT": "0"}).
    ari=True runs a Pebble that serves renewalInfo (>= 2.6, see pebble_ari_bin).
    """

    def __init__(
        self,
        tmp_dir,
        http_port: int | None = None,
        *,
        eab_required: bool = False,
        eab_keys: dict[str, str] | None = None,
        nosleep: bool = True,
        va_sleep_seconds: int | None = None,
        env: dict[str, str] | None = None,
        strict: bool = False,
        start_timeout: float = 20.0,
        dns_server: str | None = None,
        ari: bool = False,
    ):
        self.tmp_dir = Path(tmp_dir)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.http_port = http_port or free_port()
        self.tls_port = free_port()
        self.port = free_port()
        self.management_port = free_port()
        self.dns_port = free_port(udp=True)
        self.challtestsrv_port = free_port()
        self.eab_required = eab_required
        self.eab_keys = dict(eab_keys or {})
        self.nosleep = nosleep
        self.va_sleep_seconds = va_sleep_seconds
        self.extra_env = dict(env or {})
        self.strict = strict
        self.start_timeout = start_timeout
        # "host:port" of a real DNS server (e.g. BIND) for Pebble's VA instead of challtestsrv's.
        self.dns_server = dns_server
        self.binary = pebble_ari_bin() if ari else PEBBLE_BIN
        self.ca_bundle_path, self.cert_path, self.key_path = make_listener_certificates(self.tmp_dir / "certs")
        self.config_path = self.tmp_dir / "pebble-config.json"
        self.challtestsrv: ManagedProcess | None = None
        self.pebble: ManagedProcess | None = None

    # --- addresses
    @property
    def directory_url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}/dir"

    @property
    def management_url(self) -> str:
        return f"https://{LOOPBACK}:{self.management_port}"

    @property
    def challtestsrv_url(self) -> str:
        return f"http://{LOOPBACK}:{self.challtestsrv_port}"

    @property
    def dns_address(self) -> str:
        """host:port of the DNS server Pebble resolves names with (challtestsrv)."""
        return self.dns_server or f"{LOOPBACK}:{self.dns_port}"

    @property
    def log_paths(self) -> list[Path]:
        return [p.log_path for p in (self.challtestsrv, self.pebble) if p]

    def dump_logs(self, lines: int = 80) -> str:
        return dump_logs(self.log_paths, lines)

    # --- lifecycle
    def write_config(self) -> Path:
        config = {
            "pebble": {
                "listenAddress": f"{LOOPBACK}:{self.port}",
                "managementListenAddress": f"{LOOPBACK}:{self.management_port}",
                "certificate": str(self.cert_path),
                "privateKey": str(self.key_path),
                "httpPort": self.http_port,
                "tlsPort": self.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": self.eab_required,
            }
        }
        if self.eab_keys:
            config["pebble"]["externalAccountMACKeys"] = self.eab_keys
        self.config_path.write_text(json.dumps(config, indent=2))
        return self.config_path

    def pebble_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
        if self.nosleep:
            env["PEBBLE_VA_NOSLEEP"] = "1"
        elif self.va_sleep_seconds:
            env["PEBBLE_VA_SLEEPTIME"] = str(self.va_sleep_seconds)
        env.update(self.extra_env)
        return env

    def start(self) -> "Pebble":
        try:
            self.challtestsrv = ManagedProcess(
                "pebble-challtestsrv",
                [
                    CHALLTESTSRV_BIN,
                    "-dns01", f"{LOOPBACK}:{self.dns_port}",
                    "-http01", "",
                    "-https01", "",
                    "-tlsalpn01", "",
                    "-management", f"{LOOPBACK}:{self.challtestsrv_port}",
                    "-defaultIPv4", LOOPBACK,
                    "-defaultIPv6", "",
                ],
                self.tmp_dir / "challtestsrv.log",
                cwd=self.tmp_dir,
            ).start()
            self.write_config()
            argv = [self.binary, "-config", str(self.config_path), "-dnsserver", self.dns_address]
            if self.strict:
                argv.append("-strict")
            self.pebble = ManagedProcess("pebble", argv, self.tmp_dir / "pebble.log", env=self.pebble_env(), cwd=self.tmp_dir)
            self.pebble.start()
            wait_until(
                lambda: port_open(self.challtestsrv_port),
                self.start_timeout, "challtestsrv management port", processes=(self.challtestsrv,),
            )
            wait_until(lambda: "newOrder" in self.directory(), self.start_timeout, "Pebble's directory", processes=(self.pebble,))
            wait_until(lambda: self.management_get("/roots/0"), self.start_timeout, "Pebble's management interface",
                       processes=(self.pebble,))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_all([self.pebble, self.challtestsrv])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- queries
    def directory(self) -> dict:
        response = requests.get(self.directory_url, verify=str(self.ca_bundle_path), timeout=5)
        response.raise_for_status()
        return response.json()

    def management_get(self, path: str) -> str:
        response = requests.get(self.management_url + path, verify=str(self.ca_bundle_path), timeout=5)
        response.raise_for_status()
        return response.text

    def root_pem(self, index: int = 0) -> str:
        """The issuing hierarchy's root (regenerated at every Pebble start)."""
        return self.management_get(f"/roots/{index}")

    def intermediate_pem(self, index: int = 0) -> str:
        return self.management_get(f"/intermediates/{index}")

    def root_certificate(self, index: int = 0) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.root_pem(index).encode())

    def intermediate_certificate(self, index: int = 0) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.intermediate_pem(index).encode())

    # --- challtestsrv's mock DNS
    def challtestsrv_post(self, endpoint: str, payload: dict) -> None:
        """POST to challtestsrv's management API, e.g. ("add-a", {"host": ..., "addresses": [...]})."""
        response = requests.post(f"{self.challtestsrv_url}/{endpoint.lstrip('/')}", json=payload, timeout=5)
        if response.status_code != 200:
            raise HarnessError(f"challtestsrv {endpoint} {payload}: HTTP {response.status_code} {response.text}")

    def add_a_record(self, host: str, addresses: list[str]) -> None:
        self.challtestsrv_post("add-a", {"host": host, "addresses": list(addresses)})

    def clear_a_record(self, host: str) -> None:
        self.challtestsrv_post("clear-a", {"host": host})

    def set_default_ipv4(self, ip: str) -> None:
        self.challtestsrv_post("set-default-ipv4", {"ip": ip})

    def add_txt_record(self, host: str, value: str) -> None:
        # challtestsrv 2.4 (Debian) calls it set-txt; later releases renamed it add-txt.
        try:
            self.challtestsrv_post("set-txt", {"host": host, "value": value})
        except HarnessError:
            self.challtestsrv_post("add-txt", {"host": host, "value": value})

    def clear_txt_record(self, host: str) -> None:
        self.challtestsrv_post("clear-txt", {"host": host})
