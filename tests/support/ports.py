"""Free loopback ports for test processes running in parallel (pytest-xdist, benchmarks).

A port is free when it can be bound on 127.0.0.1 and on ::1 (TCP, and UDP too if asked):
the panel's private nginx listens on both loopback addresses. Ports are
drawn below the kernel's ephemeral range (net.ipv4.ip_local_port_range), so the outgoing
connections the tests themselves make cannot take a port between the moment it is
chosen and the moment its server binds it; and each one is reserved across processes
with a lock file, so two xdist workers never pick the same port. Without room below the
ephemeral range this falls back to binding 127.0.0.1:0.
"""

from __future__ import annotations

import atexit
import os
import random
import socket
import tempfile
import threading
import time
from pathlib import Path

from panel import embedded

LOOPBACK = "127.0.0.1"
LOOPBACK6 = "::1"
RESERVATION_DIR = Path(tempfile.gettempdir()) / "certpanel-test-ports"
RESERVATION_SECONDS = 600  # a reservation older than this is free again
LOWEST_PORT = 10000

_lock = threading.Lock()
_reserved_here: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK6, 0))
    except OSError:
        return False
    return True


_HAS_IPV6_LOOPBACK = _ipv6_loopback()


def _hosts(host: str) -> tuple[str, ...]:
    """Where a port chosen for `host` must be free: the IPv4 loopback brings the IPv6 one along."""
    return (host, LOOPBACK6) if host == LOOPBACK and _HAS_IPV6_LOOPBACK else (host,)


def _bindable(port: int, host: str, kind: int) -> bool:
    for address in _hosts(host):
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, kind) as s:
            try:
                s.bind((address, port))
            except OSError:
                return False
    return True


def _reserve(port: int) -> bool:
    """Claim `port` for this process, across processes (O_EXCL lock file)."""
    RESERVATION_DIR.mkdir(mode=0o1777, exist_ok=True)
    path = RESERVATION_DIR / str(port)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                if time.time() - path.stat().st_mtime < RESERVATION_SECONDS:
                    return False
                # Stale: whoever renames it away first may take the port.
                os.rename(path, path.with_name(f"{port}.stale.{os.getpid()}"))
                path.with_name(f"{port}.stale.{os.getpid()}").unlink()
            except FileNotFoundError:
                pass
            except OSError:
                return False
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        _reserved_here.add(port)
        return True
    return False


@atexit.register
def _release_reservations() -> None:
    for port in list(_reserved_here):
        try:
            (RESERVATION_DIR / str(port)).unlink()
        except OSError:
            pass


def _kernel_port(host: str, udp: bool) -> int:
    for _ in range(200):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if (_bindable(port, host, socket.SOCK_STREAM) and (not udp or _bindable(port, host, socket.SOCK_DGRAM))
                and port not in _reserved_here and _reserve(port)):
            return port
    raise RuntimeError(f"no free port found on {host}")


def free_port(host: str = LOOPBACK, udp: bool = False) -> int:
    """A port nothing listens on at `host` (TCP; UDP too if `udp`), reserved for the caller;
    for the IPv4 loopback (the default), free on the IPv6 loopback as well.

    Never returned twice within RESERVATION_SECONDS, by this or any other process using
    this module. The caller's server must bind it (nothing holds it meanwhile).
    """
    low_ephemeral, _ = _ephemeral_range()
    high = low_ephemeral - 1
    if high - LOWEST_PORT < 1000:
        return _kernel_port(host, udp)
    with _lock:
        for _ in range(500):
            port = random.randint(LOWEST_PORT, high)
            if port in _reserved_here:
                continue
            if not _bindable(port, host, socket.SOCK_STREAM):
                continue
            if udp and not _bindable(port, host, socket.SOCK_DGRAM):
                continue
            if _reserve(port):
                return port
    return _kernel_port(host, udp)


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    return [free_port(host) for _ in range(count)]


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Does something accept TCP connections on host:port?"""
    return embedded.port_answers(host, port, timeout)


def wait_for_port(port: int, host: str = LOOPBACK, timeout: float = 20.0) -> None:
    embedded.wait_for_port(host, port, timeout)
