"""HTTP-01 answered by the worker itself, like acme.sh --standalone.

`serving()` listens on the HTTP-01 port only while its block runs: the listener is up
before the caller answers the CA and closed when the block ends, whatever happens. The
port must be free: when another program holds it (the usual web server), the error says
so, naming that program when this process may see it.

Without an address it listens on every IPv4 and IPv6 address (one dual-stack socket): the
CA may connect over either, whichever the name's A and AAAA records lead it to.
"""

import errno
import http.server
import os
import socket
import socketserver
import threading
from contextlib import contextmanager
from pathlib import Path

from certs.challenges import http01

PREFIX = "/.well-known/acme-challenge/"


class PortUnavailable(Exception):
    """The port cannot be listened on; the message is for the user."""


class _ChallengeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a listener closed a moment ago (TIME_WAIT) is no reason to fail

    def __init__(self, address, responses):
        self.responses = responses
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _ChallengeRequest)

    def server_bind(self):
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too, whatever the sysctl says
        # TCPServer's bind, not HTTPServer's: that one looks the address up in the DNS (getfqdn).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "certpanel", self.server_address[1]


class _ChallengeRequest(http.server.BaseHTTPRequestHandler):
    server_version = "CertPanel"
    sys_version = ""

    def do_GET(self):
        token = self.path.split("?", 1)[0].removeprefix(PREFIX) if self.path.startswith(PREFIX) else None
        body = self.server.responses.get(token)
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 - the base class's name; requests are not logged
        pass


@contextmanager
def serving(responses: dict, address: str, port: int):
    """Answer GET /.well-known/acme-challenge/<token> with responses[token] while the block
    runs. Raises PortUnavailable when the port is taken or not ours to open."""
    responses = {http01.safe_token(token): value for token, value in responses.items()}
    address = address.strip().strip("[]")
    try:
        server = _ChallengeServer((address or _every_address(), port), responses)
    except OSError as exc:
        raise PortUnavailable(_unavailable_message(exc, port)) from exc
    thread = threading.Thread(target=server.serve_forever, name=f"http-01 standalone :{port}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _every_address():
    """"::" (every IPv6 and IPv4 address) where the host has IPv6, else "" (every IPv4 one)."""
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError:
        return ""
    return "::"


def _unavailable_message(exc, port):
    if exc.errno == errno.EADDRINUSE:
        holder = listener_of(port)
        held_by = f" by {holder}" if holder else " by another program"
        return (f"port {port} is in use{held_by}: http-01-standalone needs it free while the CA validates; "
                f"stop that server for the moment, or use http-01-webroot, http-01-nginx or http-01-apache")
    if exc.errno == errno.EACCES:
        return (f"the worker may not listen on port {port} (ports below 1024 need root or "
                f"CAP_NET_BIND_SERVICE)")
    return f"cannot listen on port {port}: {exc.strerror or exc}"


def listener_of(port):
    """'<program> (pid N)' of the process listening on TCP `port`, if /proc lets us see it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address "ADDR:PORT" in hex; state 0A is LISTEN
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in fds):
                return f"{Path(f'/proc/{pid}/comm').read_text().strip()} (pid {pid})"
        except OSError:  # gone, or another user's process
            continue
    return None
