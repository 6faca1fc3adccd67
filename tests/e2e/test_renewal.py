"""Renewal end to end with a test clock: beat finds the certificate due, renews it, nginx
serves the new serial; with the CA down the renewal backs off, then succeeds once it is back."""

import datetime
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.test_issuance import issue, served, wait_for_status


def set_clock(stack, when):
    (stack.tmp_dir / "clock").write_text(when.isoformat() if when else "")


def settle():
    time.sleep(8.5)  # CERTPANEL_RENEWAL_MIN_AGE_SECONDS below


def certificate(stack, cert_id):
    return stack.api("GET", f"/api/v1/certificates/{cert_id}/").json()


def parse(value):
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def wait(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return result


@pytest.fixture
def renewing_stack(request, tmp_path, pebble, redis_server):
    from tests.support import PanelStack

    install_root = tmp_path / "install"
    (install_root / "site").mkdir(parents=True)
    stack = PanelStack(tmp_path / "panel", pebble, redis_server, extra_env={
        "CERTPANEL_INSTALL_ROOTS": str(install_root),
        "CERTPANEL_TEST_CLOCK_FILE": str(tmp_path / "panel" / "clock"),
        "CERTPANEL_RENEWAL_SWEEP_SECONDS": "1",
        "CERTPANEL_ORDER_MAX_RETRIES": "0",
        "CERTPANEL_RENEWAL_RETRY_SECONDS": "2",
        # Pebble's certificates run five real years, the test clock jumps there: a version
        # must be this old (real time) before it renews, or a renewed one would be due again.
        "CERTPANEL_RENEWAL_MIN_AGE_SECONDS": "8",
    })
    stack.start()
    stack.start_beat()
    stack.install_root = install_root
    yield stack
    stack.stop()


class WebhookReceiver:
    """A local HTTP endpoint apprise's json:// posts to; keeps every message."""

    def __init__(self):
        self.messages = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"json://127.0.0.1:{self.server.server_port}/alerts"


@pytest.fixture
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.server.shutdown()


def add_install_target(stack, cert_id):
    """A reload preset (admin-defined, here through the shell) and a target using it."""
    marker = stack.install_root / "reloaded"
    preset_id = stack.manage("shell", "-c", (
        "from certs.models import ReloadPreset;"
        f"p = ReloadPreset.objects.create(name='touch', command=['/usr/bin/touch', '{marker}']);"
        "print(p.pk)")).stdout.split()[-1]
    root = stack.install_root / "site"
    target = stack.api("POST", "/api/v1/install-targets/", {
        "certificate": cert_id, "reload_preset": int(preset_id),
        "key_path": f"{root}/privkey.pem", "fullchain_path": f"{root}/fullchain.pem",
    })
    assert target.status_code == 201, target.text
    return root / "fullchain.pem", marker


def leaf_serial(fullchain_path):
    from cryptography import x509

    return format(x509.load_pem_x509_certificate(fullchain_path.read_bytes()).serial_number, "x")


def test_a_certificate_renews_when_a_third_of_its_lifetime_is_left(renewing_stack):
    stack = renewing_stack
    first = wait_for_status(stack, issue(stack, ["renew.example.test"], "ec256")["id"], "valid")
    assert first["order"]["status"] == "valid", first
    served(stack, "renew.example.test", first["serial"])
    fullchain, marker = add_install_target(stack, first["id"])
    wait(lambda: fullchain.exists() and leaf_serial(fullchain) == first["serial"], what="the target installed")
    marker.unlink()

    not_before, not_after = parse(first["not_before"]), parse(first["not_after"])
    planned = parse(first["next_renewal_at"])
    third_left = not_after - (not_after - not_before) / 3
    assert third_left - datetime.timedelta(hours=12, seconds=1) <= planned <= third_left

    settle()
    set_clock(stack, planned - datetime.timedelta(minutes=1))  # not yet due
    time.sleep(3)  # three sweeps
    assert certificate(stack, first["id"])["serial"] == first["serial"]

    set_clock(stack, planned + datetime.timedelta(seconds=1))
    renewed = wait(lambda: (c := certificate(stack, first["id"]))["serial"] != first["serial"]
                   and c["order"]["status"] == "valid" and c, what="the beat sweep renewing it")
    set_clock(stack, None)
    served(stack, "renew.example.test", renewed["serial"])
    # acme.sh --install-cert: the files follow the renewal and the reload preset ran.
    wait(lambda: leaf_serial(fullchain) == renewed["serial"], what="the target updated after renewal")
    wait(marker.exists, what="the reload preset running")
    assert (fullchain.parent / "privkey.pem").stat().st_mode & 0o777 == 0o600
    assert parse(renewed["next_renewal_at"]) > parse(renewed["not_before"])
    assert any("Renewal requested" in line for line in renewed["order"]["log"])


def test_a_renewal_with_the_ca_down_backs_off_alerts_then_succeeds(renewing_stack, pebble, webhook):
    stack = renewing_stack
    channel = stack.api("POST", "/api/v1/notification-channels/", {"name": "ops webhook", "url": webhook.url})
    assert channel.status_code == 201, channel.text
    first = wait_for_status(stack, issue(stack, ["backoff.example.test"], "ec256")["id"], "valid")
    planned = parse(first["next_renewal_at"])
    settle()

    pebble.stop()
    set_clock(stack, planned + datetime.timedelta(seconds=1))
    failed = wait(lambda: (c := certificate(stack, first["id"]))["order"]["status"] == "invalid" and c,
                  what="the renewal failing while the CA is down")
    assert "reach the CA" in failed["last_error"] or "connection" in failed["last_error"].lower(), failed
    assert failed["renewal_failures"] == 1
    retry_at = parse(failed["next_renewal_at"])
    assert planned < retry_at <= planned + datetime.timedelta(seconds=1, minutes=1)  # backed off, soon
    assert failed["serial"] == first["serial"]  # the old certificate is still served
    alert = wait(lambda: next((m for m in webhook.messages if "Renewal failed" in m.get("title", "")), None),
                 what="the failure alert reaching the webhook")
    assert "backoff.example.test" in alert["title"]
    assert failed["last_error"][:40] in alert["message"]  # the CA's (here: the network's) own words

    pebble.start()  # a fresh Pebble: the panel registers its account again
    set_clock(stack, retry_at + datetime.timedelta(seconds=1))
    renewed = wait(lambda: (c := certificate(stack, first["id"]))["order"]["status"] == "valid"
                   and c["serial"] != first["serial"] and c, timeout=90, what="the retry succeeding")
    set_clock(stack, None)
    served(stack, "backoff.example.test", renewed["serial"])
    versions = stack.manage("shell", "-c", "from certs.models import CertificateVersion as V;"
                            f"print(V.objects.filter(certificate_id={first['id']}).count())").stdout.split()[-1]
    assert versions == "2"  # the original and exactly one renewal
