"""End-to-end harness: real Pebble, Redis, nginx, gunicorn, Celery, BIND 9 and PowerDNS on free loopback ports.

Importable without pytest (benchmarks use it too); pytest fixtures live in tests/e2e/conftest.py.
"""

from .bind import BindResolver, BindServer
from .panel import REPO_ROOT, PanelStack, parse_nginx_command, running_stack
from .pebble import Pebble, make_listener_certificates
from .ports import LOOPBACK, free_port, free_ports, port_open, wait_for_port
from .postgres import TemporaryPostgresDatabase, postgres_available
from .powerdns import PowerDnsServer
from .process import HarnessError, ManagedProcess, dump_logs, stop_all, tail, wait_until
from .redis_server import RedisServer
from .tls import certificate_names, tls_peer_certificate, wait_for_served_certificate

__all__ = [
    "LOOPBACK",
    "REPO_ROOT",
    "BindResolver",
    "BindServer",
    "HarnessError",
    "ManagedProcess",
    "PanelStack",
    "Pebble",
    "PowerDnsServer",
    "RedisServer",
    "TemporaryPostgresDatabase",
    "certificate_names",
    "dump_logs",
    "free_port",
    "free_ports",
    "make_listener_certificates",
    "parse_nginx_command",
    "port_open",
    "postgres_available",
    "running_stack",
    "stop_all",
    "tail",
    "tls_peer_certificate",
    "wait_for_port",
    "wait_for_served_certificate",
    "wait_until",
]
