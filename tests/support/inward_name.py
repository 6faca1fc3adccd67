"""A customer's host name whose DNS record points at the server itself, resolved for real.

Run as `python -m tests.support.inward_name DATA_DIR` inside a private network and mount
namespace (tests/test_outbound_resolver.py starts it with `unshare --net --mount`): there it
binds a DNS server to 127.0.0.1:53 that answers NAME -> 127.0.0.1, points /etc/resolv.conf at
it (a bind mount, seen by this namespace only), starts a listener on loopback, and connects to
NAME the ways the panel does. Prints one JSON object: what each way ended with and how many
connections the listener accepted after each.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading

import dns.message
import dns.rdatatype
import dns.rrset

NAME = "api.customer-dns.example"


def serve_dns(sock):
    """Answer A NAME with 127.0.0.1, anything else with an empty answer."""
    while True:
        wire, client = sock.recvfrom(4096)
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        if question.name.to_text().rstrip(".") == NAME and question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(NAME + ".", 60, "IN", "A", "127.0.0.1"))
        sock.sendto(response.to_wire(), client)


def use_private_resolver():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    dns_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns_socket.bind(("127.0.0.1", 53))
    threading.Thread(target=serve_dns, args=(dns_socket,), daemon=True).start()
    resolv = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    resolv.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    resolv.close()
    subprocess.run(["mount", "--bind", resolv.name, "/etc/resolv.conf"], check=True)
    # /etc/hosts must not know the name either: then only the DNS server can answer it.
    with open("/etc/hosts") as hosts:
        assert NAME not in hosts.read()


def main(data_dir):
    os.environ.update({"DJANGO_SETTINGS_MODULE": "panel.settings", "CERTPANEL_DATA_DIR": data_dir})
    import django

    django.setup()
    import requests

    from panel.toolkit import outbound
    from tests.support.listener import Listener

    use_private_resolver()
    listener = Listener(reply=b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    url = f"http://{NAME}:{listener.port}/"
    results = {"resolved": sorted({info[4][0] for info in socket.getaddrinfo(NAME, listener.port)})}

    def attempt(label, call):
        try:
            results[label] = {"outcome": "connected", "detail": str(call())}
        except outbound.OutboundRefused as exc:
            results[label] = {"outcome": "refused", "detail": str(exc)}
        except Exception as exc:  # what else went wrong is the test's to read
            results[label] = {"outcome": type(exc).__name__, "detail": str(exc)}
        results[label]["accepted"] = listener.accepted

    # As an administrator's object: no check, so the name really leads to the listener.
    attempt("unrestricted", lambda: outbound_request(outbound.guarded(restrict=False), requests, url))
    # As a user's object: the policy resolves the name itself and refuses where it points.
    attempt("user_request", lambda: outbound_request(outbound.guarded(restrict=True, allow=()), requests, url))
    attempt("user_upstream", lambda: outbound.check_url(url, allow=()))
    listener.close()
    print(json.dumps(results))


def outbound_request(guard, requests, url):
    with guard:
        return requests.get(url, timeout=5).status_code


if __name__ == "__main__":
    main(sys.argv[1])
